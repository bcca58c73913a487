"""The document as an HTML fragment: a heading and a captioned table per display table."""

from __future__ import annotations

from html import escape

from tabulate import tabulate

from mtl_sweep.report.markup import HTML
from mtl_sweep.report.model import Document, TextTable


def write_html(doc: Document) -> str:
    """The whole document, tables in reading order."""
    out = [
        f"<h1>mtl-sweep report: sweep <code>{escape(doc.sweep)}</code></h1>",
        f"<p>{escape(doc.summary)}</p>",
    ]
    for section in doc.sections:
        for block in section.blocks:
            for table in block:
                out += _table(table)
    return "\n".join(out) + "\n"


def _table(table: TextTable) -> list[str]:
    rows = table.grid(HTML.cell, lambda label: f"<i>{escape(label)}</i>")
    body = tabulate(
        rows,
        headers=[escape(h) for h in table.headers],
        tablefmt="unsafehtml",
        colalign=table.align,
        disable_numparse=True,
    )
    cap = table.caption + (f" {table.convention.plain}" if table.convention else "")
    body = body.replace("<table>", f"<table>\n<caption>{escape(cap)}</caption>", 1)
    out = [f"<h{table.level}>{escape(table.title)}</h{table.level}>", body]
    if table.notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ul>")
    return out
