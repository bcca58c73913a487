"""Formatting a Report: markdown, GitHub markdown, LaTeX (booktabs), CSV, HTML and JSON.

tabulate draws the markdown and HTML tables, pandas' Styler the LaTeX ones; CSV and JSON
come from `export`. This module lays out the cell text of `cells` and the captions of
`captions`. Under each table with multi-task rows comes its table of paired differences
(multi-task minus single-task, seed by seed, with intervals and Holm-adjusted p-values).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from mtl_core.errors import UserError
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report import FORMATS, grouping_render
from mtl_sweep.report.captions import (
    LATEX_DELTA_CONVENTION,
    caption,
    delta_convention,
    delta_interval,
    notes,
    paired_caption,
    summary,
)
from mtl_sweep.report.cells import (
    BETTER,
    WORSE,
    best_rows,
    cell_text,
    decimals,
    delta_text,
    direction,
    gain_decimals,
    gain_text,
    interval_text,
    no_test_text,
    p_text,
    shown,
)
from mtl_sweep.report.export import to_csv, to_json
from mtl_sweep.report.stats import WILCOXON_MIN_N
from mtl_sweep.report.tables import MULTI, REFERENCE, Report, Row, Table

_REF_MARK = "@@reference-models@@"  # placeholder row, replaced by each format's separator


def render(report: Report, fmt: str = "markdown") -> str:
    """The whole report as text in `fmt` (one of FORMATS)."""
    renderers: dict[str, Callable[[Report], str]] = {
        "markdown": lambda r: _markdown(r, "pipe"),
        "github": lambda r: _markdown(r, "github"),
        "latex": _latex,
        "csv": to_csv,
        "html": _html,
        "json": to_json,
    }
    if fmt not in renderers:
        raise UserError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
    return renderers[fmt](report)


# --- the shared grid of cell strings -----------------------------------------------------


@dataclass
class Markup:
    """How one format escapes text, marks the best value and a significant difference."""

    escape: Callable[[str], str]
    bold: Callable[[str], str]
    better: str = f" {BETTER}"  # appended to a significantly better multi-task value
    worse: str = f" {WORSE}"

    def sign(self, direction: int) -> str:
        """The marker for a test's direction (+1 better, -1 worse, 0 none)."""
        return {1: self.better, -1: self.worse}.get(direction, "")


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
    "α": r"$\alpha$",
    "≥": r"$\geq$",
    "<": "$<$",  # text-mode < and > print as ¡ and ¿ in LaTeX's default font encoding
    ">": "$>$",
    "—": "---",
    "–": "--",
    "−": "$-$",
    BETTER: r"$^{\dagger}$",  # the significance markers become daggers
    WORSE: r"$^{\ddagger}$",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_ESCAPES))
LATEX = Markup(
    lambda s: _LATEX_RE.sub(lambda m: _LATEX_ESCAPES[m.group()], s),
    lambda s: rf"\textbf{{{s}}}",
    _LATEX_ESCAPES[BETTER],  # set against the number, with no space
    _LATEX_ESCAPES[WORSE],
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
    """The table's rows as escaped cell strings, with `_REF_MARK` before the reference block.
    A multi-task cell that differs significantly from single-task ends in ▲ or ▼."""
    with_n = table.common_n() is None
    best = {c.key: best_rows(table, c) for c in table.columns}
    best_delta = best_rows(table, None)

    def mark(text: str, is_best: bool, direction: int = 0) -> str:
        text = markup.escape(text)
        return (markup.bold(text) if is_best else text) + markup.sign(direction)

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
            cells.append(mark(text, i in best[c.key], direction(row, c)))
        if table.has_weights:
            cells.append(markup.escape(row.weights_text))
            is_multi = row.block == MULTI
            cells.append(mark(delta_text(row.delta_m, with_n), i in best_delta) if is_multi else "")
        if table.has_variant:
            cells.append(markup.escape(row.variant))
        out.append(cells)
    return out


def paired_rows(table: Table) -> list[Row]:
    """The multi-task rows that have at least one paired test."""
    return [r for r in table.rows if r.block == MULTI and r.paired]


def paired_headers(table: Table, report: Report) -> list[str]:
    """Headings of the paired-differences table."""
    rows = paired_rows(table)
    out = ["model", *(["pretraining"] if table.show_pretrain else []), "weights"]
    out += ["variant"] if any(r.variant for r in rows) else []
    out += ["task", "n", "MTL", "STL", "gain", f"{100 * (1 - report.alpha):g}% CI", "p"]
    out.append("p (Holm)")
    if any(t.n >= WILCOXON_MIN_N for r in rows for t in r.paired.values()):
        out.append("p (Wilcoxon)")
    return out


def paired_grid(table: Table, report: Report, markup: Markup) -> list[list[str]]:
    """One line per multi-task row and task: the means, the gain, its interval, p-values."""
    heads = paired_headers(table, report)
    out = []
    for row in paired_rows(table):
        for task, test in row.paired.items():
            metric = PRIMARY_METRIC[task]
            d, gd = decimals(metric), gain_decimals(metric)
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
            }
            ci = interval_text(shown(test.ci_low, metric), shown(test.ci_high, metric), gd)
            cells = [markup.escape(line.get(h, ci)) for h in heads]
            cells[heads.index("gain")] += markup.sign(test.direction)
            out.append(cells)
    return out


def paired_alignment(heads: list[str]) -> list[str]:
    """tabulate's colalign for the paired table: names left, numbers right."""
    text = {"model", "pretraining", "weights", "variant", "task"}
    return ["left" if h in text else "right" for h in heads]


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
        out += [f"## {table.title}", "", body, "", caption(table, report)]
        if table.has_weights:
            out += ["", delta_convention(report)]
        extra = notes(table)
        if extra:
            out += [""] + [f"- {n}" for n in extra]
        if paired_rows(table):
            heads = paired_headers(table, report)
            body = tabulate(
                paired_grid(table, report, MARKDOWN),
                headers=heads,
                tablefmt=tablefmt,
                colalign=paired_alignment(heads),
                disable_numparse=True,
            )
            title = f"### Paired differences, multi-task − single-task ({table.title})"
            out += ["", title, "", body, "", paired_caption(table, report)]
        out.append("")
    out += grouping_render.markdown_lines(report, tablefmt)
    return "\n".join(out)


def _html(report: Report) -> str:
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
        cap = caption(table, report)
        cap += " " + delta_convention(report) if table.has_weights else ""
        out += [f"<h2>{e(table.title)}</h2>", _html_table(rows, headers(table), cap, table)]
        extra = notes(table)
        if extra:
            out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in extra) + "</ul>")
        if paired_rows(table):
            heads = paired_headers(table, report)
            body = _html_table(
                paired_grid(table, report, HTML), heads, paired_caption(table, report), None
            )
            out += [f"<h3>Paired differences, multi-task − single-task ({e(table.title)})</h3>"]
            out.append(body)
    out += grouping_render.html_lines(report)
    return "\n".join(out) + "\n"


def _html_table(rows: list[list[str]], heads: list[str], cap: str, table: Table | None) -> str:
    from tabulate import tabulate

    body = tabulate(
        rows,
        headers=[html.escape(h) for h in heads],
        tablefmt="unsafehtml",
        colalign=alignment(table) if table else paired_alignment(heads),
        disable_numparse=True,
    )
    return body.replace("<table>", f"<table>\n<caption>{html.escape(cap)}</caption>", 1)


def _latex(report: Report) -> str:
    esc = LATEX.escape
    out = [f"% mtl-sweep report: sweep {report.sweep}", f"% {summary(report)}"]
    for i, table in enumerate(report.tables, 1):
        heads = [esc(h) for h in headers(table)]
        text = esc(f"{table.title}. {caption(table, report)}")
        if table.has_weights:
            text += f" {LATEX_DELTA_CONVENTION} {esc(delta_interval(report))}"
        extra = notes(table)
        if extra:
            text += " " + esc(" ".join(extra))
        label = f"tab:{_slug(report.sweep)}-{i}"
        body = _styler(grid(table, LATEX), heads, alignment(table), text, label)
        body = _REF_LINE.sub(_latex_separator(len(heads)), body)
        out.append(body.rstrip())
        if paired_rows(table):
            plain = paired_headers(table, report)
            text = esc(f"{table.title}: paired differences. {paired_caption(table, report)}")
            rows = paired_grid(table, report, LATEX)
            heads, align = [esc(h) for h in plain], paired_alignment(plain)
            body = _styler(rows, heads, align, text, f"{label}-paired")
            out.append(body.rstrip())
    out += grouping_render.latex_blocks(report, _slug(report.sweep))
    return "\n\n".join(out) + "\n"


def _styler(
    rows: list[list[str]], heads: list[str], align: list[str], text: str, label: str
) -> str:
    """A booktabs table through pandas' Styler; `align` is tabulate's colalign."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=heads)
    return frame.style.hide(axis="index").to_latex(
        hrules=True,  # booktabs: \toprule, \midrule, \bottomrule
        caption=text,
        label=label,
        position="htbp",
        position_float="centering",
        column_format="".join(a[0] for a in align),  # left -> l, right -> r
    )


_REF_LINE = re.compile(rf"^{re.escape(_REF_MARK)} .*$", flags=re.M)


def _latex_separator(width: int) -> Callable[[re.Match[str]], str]:
    line = r"\midrule" + "\n" + rf"\multicolumn{{{width}}}{{l}}{{\textit{{Reference models}}}} \\"
    return lambda _: line


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "report"
