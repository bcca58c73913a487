"""The comparison tables as a document section: each table's cells and captions, under it
the table of paired differences (multi-task minus single-task, seed by seed, with intervals
and Holm-adjusted p-values), and the same numbers as JSON and CSV records.

Text is plain Unicode (report/cells.py rounds it); each writer escapes it. JSON and CSV
carry display units: accuracies and their gains in percent (points), Age MAE in years.
"""

from __future__ import annotations

import math
from typing import Any

from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.captions import caption, notes, paired_caption
from mtl_sweep.report.cells import (
    best_rows,
    cell_text,
    decimals,
    delta_text,
    direction,
    gain_decimals,
    gain_text,
    gain_unit,
    interval_text,
    no_test_text,
    num,
    p_text,
    shown,
    unit,
)
from mtl_sweep.report.compare import detectable
from mtl_sweep.report.model.base import MULTI, REFERENCE, Interval, Paired, Row, Stat, Table
from mtl_sweep.report.model.document import Cell, Section, Separator, TextTable
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.stats import WILCOXON_MIN_N

REFERENCE_MODELS = "reference models"  # the separator row before the labelled runs
CSV_HEAD = ("table", "block", "model", "backbone", "pretrain", "tasks", "weighting", "weights")
CSV_TAIL = ("failed seeds", "missing seeds")
PAIRED_FIELDS: tuple[str, ...] = (
    "n",
    "mtl_mean",
    "stl_mean",
    "diff_mean",  # signed gain: + means multi-task is better
    "ci_low",
    "ci_high",
    "p_value",  # paired t-test, two-sided; empty where there is no test
    "p_adjusted",  # Holm over every test in the report
    "significant",  # p_adjusted < alpha
    "p_wilcoxon",  # signed-rank, only where n >= 6
)


def main_section(report: Report) -> Section:
    """Every comparison table with its paired differences, as one section (`tables`)."""
    blocks = []
    for i, table in enumerate(report.tables, 1):
        block = [_main_table(table, report, str(i))]
        if _paired_rows(table):
            block.append(_paired_table(table, report, f"{i}-paired"))
        blocks.append(block)
    return Section(
        key="tables",
        blocks=blocks,
        data=[_table_json(t, report) for t in report.tables],
        records=_records(report),
        first=CSV_HEAD,
        last=CSV_TAIL,
    )


# --- the table and its paired differences --------------------------------------------------


def _headers(table: Table) -> list[str]:
    """Column headings in order: model, [pretraining], metrics, [weights, Δm], [variant]."""
    out = ["model"]
    if table.show_pretrain:
        out.append("pretraining")
    out += [c.heading for c in table.columns]
    if table.has_weights:
        out += ["weights", "Δm (%)"]
    if table.has_variant:
        out.append("variant")
    return out


def _main_table(table: Table, report: Report, label: str) -> TextTable:
    heads = _headers(table)
    numeric = {c.heading for c in table.columns} | {"Δm (%)"}
    return TextTable(
        title=table.title,
        headers=heads,
        rows=_grid(table, len(heads)),
        caption=caption(table, report),
        align=["right" if h in numeric else "left" for h in heads],
        notes=notes(table),
        label=label,
    )


def _grid(table: Table, width: int) -> list[list[Cell] | Separator]:
    """The rows as cells, with a separator before the reference block. A multi-task cell
    that differs significantly from single-task carries the test's sign (▲ or ▼)."""
    with_n = table.common_n() is None
    best = {c.key: best_rows(table, c) for c in table.columns}
    best_delta = best_rows(table, None)
    out: list[list[Cell] | Separator] = []
    for i, row in enumerate(table.rows):
        if row.block == REFERENCE and i > 0 and table.rows[i - 1].block != REFERENCE:
            out.append(Separator(REFERENCE_MODELS))
        cells = [Cell(row.name)]
        if table.show_pretrain:
            cells.append(Cell(row.pretrain))
        for c in table.columns:
            stat = row.cells.get(c.key)
            text = "" if stat is None else cell_text(stat, c.metric, with_n)
            cells.append(Cell(text, i in best[c.key], direction(row, c)))
        if table.has_weights:
            cells.append(Cell(row.weights_text))
            delta = delta_text(row.delta_m, with_n) if row.block == MULTI else ""
            cells.append(Cell(delta, row.block == MULTI and i in best_delta))
        if table.has_variant:
            cells.append(Cell(row.variant))
        out.append(cells)
    return out


def _paired_rows(table: Table) -> list[Row]:
    """The multi-task rows that have at least one paired test."""
    return [r for r in table.rows if r.block == MULTI and r.paired]


def _paired_table(table: Table, report: Report, label: str) -> TextTable:
    """One line per multi-task row and task: the means, the gain, its interval, p-values."""
    rows = _paired_rows(table)
    heads = ["model", *(["pretraining"] if table.show_pretrain else []), "weights"]
    heads += ["variant"] if any(r.variant for r in rows) else []
    ci_head = f"{100 * (1 - report.alpha):g}% CI"
    heads += ["task", "n", "MTL", "STL", "gain", ci_head, "p"]
    heads.append("p (Holm)")
    if any(t.n >= WILCOXON_MIN_N for r in rows for t in r.paired.values()):
        heads.append("p (Wilcoxon)")
    grid: list[list[Cell] | Separator] = []
    for row in rows:
        for task, test in row.paired.items():
            line = _paired_line(row, task, test, ci_head)
            grid.append([Cell(line[h], sign=test.direction if h == "gain" else 0) for h in heads])
    text = {"model", "pretraining", "weights", "variant", "task"}
    return TextTable(
        title=f"Paired differences, multi-task − single-task ({table.title})",
        headers=heads,
        rows=grid,
        caption=paired_caption(table, report),
        align=["left" if h in text else "right" for h in heads],
        level=3,
        float_title=f"{table.title}: paired differences",
        label=label,
    )


def _paired_line(row: Row, task: str, test: Paired, ci_head: str) -> dict[str, str]:
    metric = PRIMARY_METRIC[task]
    d, gd = decimals(metric), gain_decimals(metric)
    ci = interval_text(shown(test.ci_low, metric), shown(test.ci_high, metric), gd)
    line = {
        "model": row.name,
        "pretraining": row.pretrain,
        "weights": row.weights_text,
        "variant": row.variant,
        "task": metric.label,
        "n": str(test.n),
        "MTL": f"{shown(test.mtl_mean, metric):.{d}f}",
        "STL": f"{shown(test.stl_mean, metric):.{d}f}",
        "gain": gain_text(test.diff_mean, metric),
        "p": p_text(test.p_value) if test.tested else no_test_text(test),
        "p (Holm)": p_text(test.p_adjusted) if test.tested else "",
        "p (Wilcoxon)": "" if math.isnan(test.p_wilcoxon) else p_text(test.p_wilcoxon),
        ci_head: ci,
    }
    return line


# --- JSON and CSV ----------------------------------------------------------------------------


def paired_record(task: str, test: Paired) -> dict[str, Any]:
    """One paired test as PAIRED_FIELDS, in display units."""
    scale = 100.0 if PRIMARY_METRIC[task].percent else 1.0
    return {
        "n": test.n,
        "mtl_mean": num(test.mtl_mean * scale),
        "stl_mean": num(test.stl_mean * scale),
        "diff_mean": num(test.diff_mean * scale),
        "ci_low": num(test.ci_low * scale),
        "ci_high": num(test.ci_high * scale),
        "p_value": _p(test.p_value),
        "p_adjusted": _p(test.p_adjusted),
        "significant": test.significant,
        "p_wilcoxon": _p(test.p_wilcoxon),
    }


def _p(p: float) -> float | None:
    # Unrounded: a p-value of 1e-12 must not become 0.
    return None if math.isnan(p) else p


def _records(report: Report) -> list[dict[str, Any]]:
    """One flat record per table row, numbers in display units (percent for accuracies)."""
    out = []
    for table in report.tables:
        tasks = list(dict.fromkeys(t for r in _paired_rows(table) for t in r.paired))
        for row in table.rows:
            rec: dict[str, Any] = {
                "table": table.title,
                "block": row.block,
                "model": row.name,
                "backbone": row.backbone,
                "pretrain": row.pretrain,
                "tasks": "+".join(row.tasks),
                "weighting": row.weighting,
                "weights": row.weights_text,
                "label": row.label or "",
                "variant": row.variant,
            }
            for c in table.columns:
                stat = row.cells.get(c.key)
                scale = 100.0 if c.metric.percent else 1.0
                rec[f"{c.heading} mean"] = num(stat.mean * scale) if stat else None
                rec[f"{c.heading} std"] = num(stat.std * scale) if stat else None
                rec[f"{c.heading} n"] = stat.n if stat else None
            if table.has_weights:
                dm = row.delta_m
                rec["Δm (%)"] = num(dm.mean) if dm else None
                rec["Δm std"] = num(dm.std) if dm else None
                rec["Δm n"] = dm.n if dm else None
                rec["Δm ci_low"] = num(dm.low) if dm else None
                rec["Δm ci_high"] = num(dm.high) if dm else None
            for task in tasks:
                test = row.paired.get(task)
                fields = paired_record(task, test) if test else dict.fromkeys(PAIRED_FIELDS)
                rec.update({f"{task} {k}": v for k, v in fields.items()})
            rec["failed seeds"] = " ".join(map(str, row.failed))
            rec["missing seeds"] = " ".join(map(str, row.missing))
            out.append(rec)
    return out


def _stat_json(stat: Stat | None, scale: float, is_best: bool) -> dict[str, Any] | None:
    if stat is None:
        return None
    out = {
        "mean": num(stat.mean * scale),
        "std": num(stat.std * scale),
        "n": stat.n,
        "best": is_best,
    }
    if isinstance(stat, Interval):
        out |= {"ci_low": num(stat.low * scale), "ci_high": num(stat.high * scale)}
    return out


def _row_json(table: Table, row: Row, best: dict[str, bool], best_delta: bool) -> dict[str, Any]:
    return {
        "model": row.name,
        "block": row.block,
        "backbone": row.backbone,
        "pretrain": row.pretrain,
        "tasks": list(row.tasks),
        "weighting": row.weighting,
        "weights": row.weights_text,
        "label": row.label,
        "variant": row.variant,
        "cells": {
            c.key: _stat_json(row.cells.get(c.key), 100.0 if c.metric.percent else 1.0, best[c.key])
            for c in table.columns
        },
        "delta_m": _stat_json(row.delta_m, 1.0, best_delta),
        "delta_note": row.delta_note,
        "paired": {
            t: paired_record(t, p) | {"seeds": list(p.seeds), "no_test": p.no_test}
            for t, p in row.paired.items()
        },
        "failed_seeds": list(row.failed),
        "unfinished_seeds": list(row.unfinished),
        "missing_seeds": list(row.missing),
    }


def _table_json(table: Table, report: Report) -> dict[str, Any]:
    best = {c.key: best_rows(table, c) for c in table.columns}
    best_delta = best_rows(table, None)
    rows = [
        _row_json(table, row, {k: i in v for k, v in best.items()}, i in best_delta)
        for i, row in enumerate(table.rows)
    ]
    multi = _paired_rows(table)
    found = detectable(multi, report.alpha)
    return {
        "title": table.title,
        "n": table.common_n(),
        "caption": caption(table, report),
        "paired_caption": paired_caption(table, report) if multi else "",
        "notes": notes(table),
        "columns": [
            {
                "key": c.key,
                "heading": c.heading,
                "task": c.task,
                "datasets": list(c.datasets),
                "unit": unit(c.metric),
                "higher_is_better": c.metric.higher_is_better,
            }
            for c in table.columns
        ],
        # Per task: the smallest gain this n and spread detect with 80% power.
        "min_detectable_gain": {
            t: {
                "n": n,
                "gain": num(mdd * (100.0 if PRIMARY_METRIC[t].percent else 1.0)),
                "unit": gain_unit(PRIMARY_METRIC[t]),
            }
            for t, (n, mdd) in found.items()
        },
        "rows": rows,
    }
