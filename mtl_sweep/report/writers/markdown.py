"""The document as markdown: tabulate's `pipe` tables, or `github` ones."""

from __future__ import annotations

from tabulate import tabulate

from mtl_sweep.report.markup import MARKDOWN
from mtl_sweep.report.model.document import Convention, Document, Section, TextTable


def write_markdown(doc: Document, tablefmt: str = "pipe") -> str:
    """The whole document; a block's tables follow each other, each block ends in a blank."""
    out = [f"# mtl-sweep report: sweep `{doc.sweep}`", "", doc.summary, ""]
    if doc.empty:
        out += [doc.empty, ""]
    for section in doc.sections:
        out += _text(section)
        for block in section.blocks:
            for i, table in enumerate(block):
                out += ([""] if i else []) + _table(table, tablefmt)
            out.append("")
    return "\n".join(out)


def _text(section: Section) -> list[str]:
    """A titled section's heading and text: paragraphs, or a bulleted list."""
    if not section.title:
        return []
    out = [f"## {section.title}", ""]
    for item in section.text:
        line = item.plain if isinstance(item, Convention) else item
        out += [f"- {line}"] if section.listed else [line, ""]
    return out + ([""] if section.listed else [])


def _table(table: TextTable, tablefmt: str) -> list[str]:
    rows = table.grid(MARKDOWN.cell, lambda label: f"*{label}*")
    body = tabulate(
        rows,
        headers=[MARKDOWN.escape(h) for h in table.headers],
        tablefmt=tablefmt,
        colalign=table.align,
        disable_numparse=True,
    )
    out = [f"{'#' * table.level} {table.title}", "", body, "", table.caption]
    if table.convention:
        out += ["", table.convention.plain]
    if table.notes:
        out += [""] + [f"- {n}" for n in table.notes]
    return out
