"""The machine-readable formats: CSV (one record per table row) and JSON (the whole report).

Numbers are in display units: accuracies and their gains in percent (points), Age MAE in
years. A multi-task row carries, per task, its paired test against single-task with the
fields PAIRED_FIELDS (CSV columns `<task> <field>`, JSON `paired.<task>.<field>`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report import grouping_render
from mtl_sweep.report.captions import caption, confidence, delta_convention, notes, paired_caption
from mtl_sweep.report.cells import best_rows, gain_unit, num, unit
from mtl_sweep.report.compare import detectable
from mtl_sweep.report.stats import Interval, Paired, Stat
from mtl_sweep.report.tables import MULTI, Report, Row, Table

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


def records(report: Report) -> list[dict[str, Any]]:
    """One flat record per table row, numbers in display units (percent for accuracies)."""
    out = []
    for table in report.tables:
        tasks = _tested_tasks(table)
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


def _tested_tasks(table: Table) -> list[str]:
    return list(dict.fromkeys(t for r in table.rows if r.block == MULTI for t in r.paired))


def to_csv(report: Report) -> str:
    """The records as CSV: identity first, seed lists last, counts as integers."""
    import pandas as pd

    recs = records(report) + grouping_render.grouping_records(report)
    head = ["table", "block", "model", "backbone", "pretrain", "tasks", "weighting", "weights"]
    tail = ["failed seeds", "missing seeds"]
    middle = dict.fromkeys(k for r in recs for k in r if k not in head and k not in tail)
    frame = pd.DataFrame.from_records(recs, columns=[*head, *middle, *tail])
    for col in frame.columns:
        if col.endswith(" n"):  # blank where a row has no such cell, not 3.0
            frame[col] = frame[col].astype("Int64")
        elif col.endswith(" significant"):
            frame[col] = frame[col].astype("boolean")
    return frame.to_csv(index=False)


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
    multi = [r for r in table.rows if r.block == MULTI and r.paired]
    found = detectable(multi, report.alpha)
    return {
        "title": table.title,
        "n": table.common_n(),
        "caption": caption(table, report, bold=False),
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


def to_json(report: Report) -> str:
    """The whole report as one JSON document."""
    doc = {
        "sweep": report.sweep,
        "experiment": report.experiment,
        "tracking_uri": report.uri,
        "group_by": list(report.group_by),
        "counts": report.counts,
        "delta_m_convention": delta_convention(report),
        "alpha": report.alpha,
        "confidence": confidence(report),
        "holm_family": "report",  # Holm runs over every paired test in the report at once
        "tests": report.tests,
        "tables": [_table_json(t, report) for t in report.tables],
        "groupings": grouping_render.groupings_json(report),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
