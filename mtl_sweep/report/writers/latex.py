"""The document as LaTeX: one booktabs table float per display table, through pandas'
Styler, with the title, caption, formula and footnotes in the float's caption."""

from __future__ import annotations

import re

import pandas as pd

from mtl_sweep.report.markup import LATEX, slug
from mtl_sweep.report.model.document import Convention, Document, Section, TextTable

_SEPARATOR = "@@separator@@"  # placeholder cell, replaced by a rule and a spanning label
_SEPARATOR_LINE = re.compile(rf"^{re.escape(_SEPARATOR)}(.*?)@@ .*$", flags=re.M)


def write_latex(doc: Document) -> str:
    """The whole document; floats are labelled `tab:<sweep>-<table label>`."""
    out = [f"% mtl-sweep report: sweep {doc.sweep}", f"% {doc.summary}"]
    name = slug(doc.sweep)
    for section in doc.sections:
        if section.title:
            out.append(_text(section))
        for block in section.blocks:
            out += [_table(table, f"tab:{name}-{table.label}") for table in block]
    return "\n\n".join(out) + "\n"


def _text(section: Section) -> str:
    """A titled section: an unnumbered heading, then paragraphs or an itemize list."""
    items = [
        f"{t.latex} {LATEX.escape(t.tail)}".strip()
        if isinstance(t, Convention)
        else LATEX.escape(t)
        for t in section.text
    ]
    head = rf"\section*{{{LATEX.escape(section.title)}}}"
    if section.listed:
        body = "\n".join(rf"  \item {item}" for item in items)
        return f"{head}\n\\begin{{itemize}}\n{body}\n\\end{{itemize}}"
    return "\n\n".join([head, *items])


def _table(table: TextTable, label: str) -> str:
    text = LATEX.escape(f"{table.float_title or table.title}. {table.caption}")
    if table.convention:
        text += f" {table.convention.latex} {LATEX.escape(table.convention.tail)}"
    if table.notes:
        text += " " + LATEX.escape(" ".join(table.notes))
    width = len(table.headers)
    rows = table.grid(LATEX.cell, lambda label: f"{_SEPARATOR}{label}@@")
    frame = pd.DataFrame(rows, columns=[LATEX.escape(h) for h in table.headers])
    align = table.align or ["left"] * width
    body = frame.style.hide(axis="index").to_latex(
        hrules=True,  # booktabs: \toprule, \midrule, \bottomrule
        caption=text,
        label=label,
        position="htbp",
        position_float="centering",
        column_format="".join(a[0] for a in align),  # left -> l, right -> r
    )
    return _SEPARATOR_LINE.sub(lambda m: _rule(m.group(1), width), body).rstrip()


def _rule(label: str, width: int) -> str:
    title = label[0].upper() + label[1:]
    return r"\midrule" + "\n" + rf"\multicolumn{{{width}}}{{l}}{{\textit{{{title}}}}} \\"
