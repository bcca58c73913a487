"""Rendering a Report: lay it out as a Document once, then hand it to the format's writer.

Markdown and GitHub markdown (tabulate), HTML (tabulate), LaTeX (pandas' Styler), CSV
(pandas) and JSON are text; the figures of `--plot` come from writers/plot.py.
"""

from __future__ import annotations

from collections.abc import Callable

from mtl_core.errors import UserError
from mtl_sweep.report.document import build_document
from mtl_sweep.report.model.base import FORMATS
from mtl_sweep.report.model.document import Document
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.writers.csv import write_csv
from mtl_sweep.report.writers.html import write_html
from mtl_sweep.report.writers.json import write_json
from mtl_sweep.report.writers.latex import write_latex
from mtl_sweep.report.writers.markdown import write_markdown

WRITERS: dict[str, Callable[[Document], str]] = {
    "markdown": lambda doc: write_markdown(doc, "pipe"),
    "github": lambda doc: write_markdown(doc, "github"),
    "latex": write_latex,
    "csv": write_csv,
    "html": write_html,
    "json": write_json,
}


def render(report: Report, fmt: str = "markdown") -> str:
    """The whole report as text in `fmt` (one of FORMATS)."""
    if fmt not in WRITERS:
        raise UserError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
    return WRITERS[fmt](build_document(report))
