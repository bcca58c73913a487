"""Formatting a Report: markdown, GitHub markdown, LaTeX (booktabs), CSV, HTML and JSON.

tabulate draws the markdown and HTML tables, pandas' Styler the LaTeX ones and pandas the
CSV. This module only turns aggregated numbers into cell text (rounding, percent, bold for
the best value, `—` for a cell with no finished run) and adds captions and footnotes.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mtl_sweep.errors import UserError
from mtl_sweep.report import FORMATS, grouping_render
from mtl_sweep.report.tables import MULTI, REFERENCE, Column, Report, Row, Stat, Table
from mtl_sweep.tasks import Metric

MISSING = "—"  # a cell the row trained but has no finished run for
MAX_NOTES = 12  # rows listed in a table's failure footnote before "and N more"
_REF_MARK = "@@reference-models@@"  # placeholder row, replaced by each format's separator
DECIMALS: dict[str, int] = {"age_mae": 2, "age_eps": 3}  # shown decimals; accuracies: 1 (%)
DELTA_DECIMALS = 2


def render(report: Report, fmt: str = "markdown") -> str:
    """The whole report as text in `fmt` (one of FORMATS)."""
    renderers: dict[str, Callable[[Report], str]] = {
        "markdown": lambda r: _markdown(r, "pipe"),
        "github": lambda r: _markdown(r, "github"),
        "latex": _latex,
        "csv": _csv,
        "html": _html,
        "json": _json,
    }
    if fmt not in renderers:
        raise UserError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
    return renderers[fmt](report)


# --- numbers -----------------------------------------------------------------------------


def decimals(metric: Metric) -> int:
    """Shown decimals: 1 for accuracies in percent, 2 for MAE in years, 3 for epsilon."""
    return DECIMALS.get(metric.name, 1 if metric.percent else 2)


def shown(value: float, metric: Metric) -> float:
    """A stored value in display units (accuracy fractions become percent)."""
    return value * 100.0 if metric.percent else value


def cell_text(stat: Stat, metric: Metric, with_n: bool) -> str:
    """`91.2 ± 0.3`, `5.31` for one seed, `—` for none; `(n=2)` appended when asked."""
    if stat.n == 0:
        return MISSING
    d = decimals(metric)
    text = f"{shown(stat.mean, metric):.{d}f}"
    if stat.n > 1:
        text += f" ± {shown(stat.std, metric):.{d}f}"
    return f"{text} (n={stat.n})" if with_n else text


def delta_text(stat: Stat | None, with_n: bool) -> str:
    """Δm with its sign, e.g. `+1.46`; `—` when it could not be computed."""
    if stat is None:
        return MISSING
    text = f"{stat.mean:+.{DELTA_DECIMALS}f}"
    return f"{text} (n={stat.n})" if with_n else text


def best_rows(table: Table, column: Column | None) -> set[int]:
    """Indices of the rows holding the best shown value of a metric column (or of Δm when
    `column` is None). Ties at the shown precision all count; a column with fewer than two
    values has no best."""
    found: dict[int, float] = {}
    for i, row in enumerate(table.rows):
        if column is None:
            if row.block == MULTI and row.delta_m is not None:
                found[i] = round(row.delta_m.mean, DELTA_DECIMALS)
        elif (stat := row.cells.get(column.key)) is not None and stat.n:
            found[i] = round(shown(stat.mean, column.metric), decimals(column.metric))
    if len(found) < 2:
        return set()  # a single value is not a comparison
    higher = column is None or column.metric.higher_is_better
    best = max(found.values()) if higher else min(found.values())
    return {i for i, v in found.items() if v == best}


# --- the shared grid of cell strings -----------------------------------------------------


@dataclass
class Markup:
    """How one format escapes text and marks the best value."""

    escape: Callable[[str], str]
    bold: Callable[[str], str]


MARKDOWN = Markup(lambda s: s.replace("|", r"\|"), lambda s: f"**{s}**")
HTML = Markup(html.escape, lambda s: f"<b>{s}</b>")
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "ε": r"$\varepsilon$",
    "—": "---",
    "−": "$-$",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_ESCAPES))
LATEX = Markup(
    lambda s: _LATEX_RE.sub(lambda m: _LATEX_ESCAPES[m.group()], s),
    lambda s: rf"\textbf{{{s}}}",
)


def headers(table: Table) -> list[str]:
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


def alignment(table: Table) -> list[str]:
    """tabulate's colalign: names and weights left, numbers right."""
    heads = headers(table)
    numeric = {c.heading for c in table.columns} | {"Δm (%)"}
    return ["right" if h in numeric else "left" for h in heads]


def grid(table: Table, markup: Markup) -> list[list[str]]:
    """The table's rows as escaped cell strings, with `_REF_MARK` before the reference block."""
    with_n = table.common_n() is None
    best = {c.key: best_rows(table, c) for c in table.columns}
    best_delta = best_rows(table, None)

    def mark(text: str, is_best: bool) -> str:
        text = markup.escape(text)
        return markup.bold(text) if is_best else text

    out: list[list[str]] = []
    for i, row in enumerate(table.rows):
        if row.block == REFERENCE and i > 0 and table.rows[i - 1].block != REFERENCE:
            out.append([_REF_MARK] + [""] * (len(headers(table)) - 1))
        cells = [markup.escape(row.name)]
        if table.show_pretrain:
            cells.append(markup.escape(row.pretrain))
        for c in table.columns:
            stat = row.cells.get(c.key)
            text = "" if stat is None else cell_text(stat, c.metric, with_n)
            cells.append(mark(text, i in best[c.key]))
        if table.has_weights:
            cells.append(markup.escape(row.weights_text))
            is_multi = row.block == MULTI
            cells.append(mark(delta_text(row.delta_m, with_n), i in best_delta) if is_multi else "")
        if table.has_variant:
            cells.append(markup.escape(row.variant))
        out.append(cells)
    return out


# --- captions and footnotes (plain text; each format escapes them) ------------------------

DELTA_CONVENTION = (
    "Δm (%) = 100/T Σ_t s_t (M_t − S_t) / S_t over the row's T tasks, against the single-task "
    "rows with the same backbone, pretraining and seeds; s_t = +1 where higher is better, "
    "−1 where lower is better (Age MAE); positive means multi-task helps."
)
_LATEX_DELTA_CONVENTION = (
    r"$\Delta_m = \frac{100}{T} \sum_t s_t (M_t - S_t) / S_t$ (\%) over the row's $T$ tasks, "
    r"against the single-task rows with the same backbone, pretraining and seeds; "
    r"$s_t = +1$ where higher is better, $-1$ where lower is better (Age MAE); "
    r"positive means multi-task helps."
)


def caption(table: Table, bold: bool = True) -> str:
    """What the numbers are: seeds and n, units, the best-value mark (Δm's convention is
    added by each format, with its own math markup)."""
    n = table.common_n()
    if n is None:
        parts = ["Mean ± sample std over seeds; n per cell."]
    elif n == 1:
        parts = ["One seed per cell (n = 1), so no std."]
    else:
        parts = [f"Mean ± sample std over n = {n} seeds."]
    units = [
        *(["accuracies in percent"] if any(c.metric.percent for c in table.columns) else []),
        *(["Age MAE in years"] if _has(table, "age_mae") else []),
    ]
    if units:
        text = "; ".join(units)
        parts.append(text[0].upper() + text[1:] + ".")
    if bold and _any_best(table):
        parts.append("Best value per column in bold.")
    return " ".join(parts)


def _any_best(table: Table) -> bool:
    return any(best_rows(table, c) for c in table.columns) or bool(best_rows(table, None))


def _has(table: Table, metric_name: str) -> bool:
    return any(c.metric.name == metric_name for c in table.columns)


def notes(table: Table) -> list[str]:
    """Footnotes: what `—` means, which seeds failed or are missing, and why a Δm is absent."""
    out = []
    if any(s.n == 0 for r in table.rows for s in r.cells.values()):
        out.append(f"{MISSING} : no finished run for that cell (see the failures below).")
    trouble = [r for r in table.rows if r.failed or r.unfinished or r.missing]
    for row in trouble[:MAX_NOTES]:
        what = [
            f"{_seeds(seeds)} {word}"
            for seeds, word in (
                (row.failed, "failed"),
                (row.unfinished, "unfinished"),
                (row.missing, "missing (no run)"),
            )
            if seeds
        ]
        out.append(f"{_row_label(row)}: {'; '.join(what)}.")
    if len(trouble) > MAX_NOTES:
        out.append(f"... and {len(trouble) - MAX_NOTES} more rows with failed or missing seeds.")
    for row in table.rows:
        if row.block == MULTI and row.delta_m is None and row.delta_note:
            out.append(f"Δm {MISSING} for {_row_label(row)}: {row.delta_note}.")
    return out


def _seeds(seeds: tuple[int, ...]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def _row_label(row: Row) -> str:
    extra = ", ".join(x for x in (row.weights_text, row.variant) if x)
    pretrain = f" [{row.pretrain}]" if row.pretrain != "none" and row.block != "pretraining" else ""
    return f"{row.name}{pretrain}" + (f" ({extra})" if extra else "")


def summary(report: Report) -> str:
    """One line: where the runs came from and how many trials finished, failed, are missing."""
    c = report.counts
    trials = (
        f"{c['trials_finished']} trials finished, {c['trials_failed']} failed, "
        f"{c['trials_unfinished']} unfinished, {c['trials_missing']} missing"
    )
    jobs = f"{c['pretrain_finished']} finished, {c['pretrain_failed']} failed"
    return (
        f"Experiment {report.experiment!r} in {report.uri}: {trials}; pretraining jobs: {jobs}. "
        "Only FINISHED runs are aggregated."
    )


# --- formats -----------------------------------------------------------------------------


def _markdown(report: Report, tablefmt: str) -> str:
    from tabulate import tabulate

    out = [f"# mtl-sweep report: sweep `{report.sweep}`", "", summary(report), ""]
    if not report.tables:
        out += ["No trial or pretraining runs yet.", ""]
    for table in report.tables:
        rows = [
            ["*reference models*", *r[1:]] if r[0] == _REF_MARK else r
            for r in grid(table, MARKDOWN)
        ]
        body = tabulate(
            rows,
            headers=headers(table),
            tablefmt=tablefmt,
            colalign=alignment(table),
            disable_numparse=True,
        )
        out += [f"## {table.title}", "", body, "", caption(table)]
        if table.has_weights:
            out += ["", DELTA_CONVENTION]
        extra = notes(table)
        if extra:
            out += [""] + [f"- {n}" for n in extra]
        out.append("")
    out += grouping_render.markdown_lines(report, tablefmt)
    return "\n".join(out)


def _html(report: Report) -> str:
    from tabulate import tabulate

    e = html.escape
    out = [
        f"<h1>mtl-sweep report: sweep <code>{e(report.sweep)}</code></h1>",
        f"<p>{e(summary(report))}</p>",
    ]
    for table in report.tables:
        rows = [
            ["<i>reference models</i>", *r[1:]] if r[0] == _REF_MARK else r
            for r in grid(table, HTML)
        ]
        heads = [e(h) for h in headers(table)]
        body = tabulate(
            rows,
            headers=heads,
            tablefmt="unsafehtml",
            colalign=alignment(table),
            disable_numparse=True,
        )
        cap = caption(table) + (" " + DELTA_CONVENTION if table.has_weights else "")
        body = body.replace("<table>", f"<table>\n<caption>{e(cap)}</caption>", 1)
        out += [f"<h2>{e(table.title)}</h2>", body]
        extra = notes(table)
        if extra:
            out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in extra) + "</ul>")
    out += grouping_render.html_lines(report)
    return "\n".join(out) + "\n"


def _latex(report: Report) -> str:
    import pandas as pd

    esc = LATEX.escape
    out = [f"% mtl-sweep report: sweep {report.sweep}", f"% {summary(report)}"]
    for i, table in enumerate(report.tables, 1):
        heads = [esc(h) for h in headers(table)]
        frame = pd.DataFrame(grid(table, LATEX), columns=heads)
        text = esc(f"{table.title}. {caption(table)}")
        if table.has_weights:
            text += " " + _LATEX_DELTA_CONVENTION
        extra = notes(table)
        if extra:
            text += " " + esc(" ".join(extra))
        body = frame.style.hide(axis="index").to_latex(
            hrules=True,  # booktabs: \toprule, \midrule, \bottomrule
            caption=text,
            label=f"tab:{_slug(report.sweep)}-{i}",
            position="htbp",
            position_float="centering",
            column_format=_column_format(table, len(heads)),
        )
        body = _REF_LINE.sub(_latex_separator(len(heads)), body)
        out.append(body.rstrip())
    out += grouping_render.latex_blocks(report, _slug(report.sweep))
    return "\n\n".join(out) + "\n"


_REF_LINE = re.compile(rf"^{re.escape(_REF_MARK)} .*$", flags=re.M)


def _latex_separator(width: int) -> Callable[[re.Match[str]], str]:
    line = r"\midrule" + "\n" + rf"\multicolumn{{{width}}}{{l}}{{\textit{{Reference models}}}} \\"
    return lambda _: line


def _column_format(table: Table, width: int) -> str:
    """Text columns left-aligned, numbers right-aligned."""
    left = 1 + table.show_pretrain
    return "l" * left + "r" * (width - left)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "report"


def records(report: Report) -> list[dict[str, Any]]:
    """One flat record per table row, numbers in display units (percent for accuracies)."""
    out = []
    for table in report.tables:
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
                rec[f"{c.heading} mean"] = _num(stat.mean * scale) if stat else None
                rec[f"{c.heading} std"] = _num(stat.std * scale) if stat else None
                rec[f"{c.heading} n"] = stat.n if stat else None
            if table.has_weights:
                dm = row.delta_m
                rec["Δm (%)"] = _num(dm.mean) if dm else None
                rec["Δm std"] = _num(dm.std) if dm else None
                rec["Δm n"] = dm.n if dm else None
            rec["failed seeds"] = " ".join(map(str, row.failed))
            rec["missing seeds"] = " ".join(map(str, row.missing))
            out.append(rec)
    return out


def _num(x: float) -> float | None:
    # Rounded past any shown precision: 0.912 * 100 gives 91.2, not 91.20000000000002.
    return None if math.isnan(x) else round(x, 9)


def _csv(report: Report) -> str:
    import pandas as pd

    recs = records(report) + grouping_render.grouping_records(report)
    # Identity first, seed lists last; counts as integers (blank where a row has no cell).
    head = ["table", "block", "model", "backbone", "pretrain", "tasks", "weighting", "weights"]
    tail = ["failed seeds", "missing seeds"]
    middle = dict.fromkeys(k for r in recs for k in r if k not in head and k not in tail)
    frame = pd.DataFrame.from_records(recs, columns=[*head, *middle, *tail])
    for col in frame.columns:
        if col.endswith(" n"):
            frame[col] = frame[col].astype("Int64")
    return frame.to_csv(index=False)


def _stat_json(stat: Stat | None, scale: float, is_best: bool) -> dict[str, Any] | None:
    if stat is None:
        return None
    return {
        "mean": _num(stat.mean * scale),
        "std": _num(stat.std * scale),
        "n": stat.n,
        "best": is_best,
    }


def _unit(metric: Metric) -> str:
    return "%" if metric.percent else "years" if metric.name == "age_mae" else ""


def _json(report: Report) -> str:
    tables = []
    for table in report.tables:
        best = {c.key: best_rows(table, c) for c in table.columns}
        best_delta = best_rows(table, None)
        rows = []
        for i, row in enumerate(table.rows):
            rows.append(
                {
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
                        c.key: _stat_json(
                            row.cells.get(c.key),
                            100.0 if c.metric.percent else 1.0,
                            i in best[c.key],
                        )
                        for c in table.columns
                    },
                    "delta_m": _stat_json(row.delta_m, 1.0, i in best_delta),
                    "delta_note": row.delta_note,
                    "failed_seeds": list(row.failed),
                    "unfinished_seeds": list(row.unfinished),
                    "missing_seeds": list(row.missing),
                }
            )
        tables.append(
            {
                "title": table.title,
                "n": table.common_n(),
                "caption": caption(table, bold=False),
                "notes": notes(table),
                "columns": [
                    {
                        "key": c.key,
                        "heading": c.heading,
                        "task": c.task,
                        "datasets": list(c.datasets),
                        "unit": _unit(c.metric),
                        "higher_is_better": c.metric.higher_is_better,
                    }
                    for c in table.columns
                ],
                "rows": rows,
            }
        )
    doc = {
        "sweep": report.sweep,
        "experiment": report.experiment,
        "tracking_uri": report.uri,
        "group_by": list(report.group_by),
        "counts": report.counts,
        "delta_m_convention": DELTA_CONVENTION,
        "tables": tables,
        "groupings": grouping_render.groupings_json(report),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
