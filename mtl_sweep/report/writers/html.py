"""The document as one standalone HTML page: opens offline, in any browser, as it is.

`<!doctype html>`, UTF-8, the style inline and no external asset (no script, font, image
or stylesheet to fetch). Tables have borders, numbers right-aligned in tabular figures,
▲ green and ▼ red; each table's caption and footnotes fold away under a `<details>`.
"""

from __future__ import annotations

import re
from html import escape

from tabulate import tabulate

from mtl_sweep.report.markup import HTML, slug
from mtl_sweep.report.model.document import Convention, Document, Section, TextTable

_SEPARATOR_ROW = re.compile(r"<tr><td[^>]*>(<i>[^<]*</i>)\s*</td>(?:<td[^>]*>\s*</td>)*</tr>")
CSS = """
:root { color-scheme: light; --line: #d0d7de; --muted: #57606a; --head: #f6f8fa; }
body { margin: 0; color: #1f2328; background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
main { padding: 1.5rem 2rem 3rem; }
p, li { max-width: 75rem; }
h1 { font-size: 1.55rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .25rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
p.summary { color: var(--muted); margin-top: 0; }
section.findings { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px;
  padding: .2rem 1.2rem .8rem; }
section.findings h2 { border-bottom: none; margin-top: .8rem; }
section.findings li { margin: .35rem 0; }
section.how-to-read p { color: #32383f; }
figure { margin: 0 0 1.6rem; overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; white-space: normal; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td[style*="right"], th[style*="right"] { font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.up { color: #1a7f37; font-weight: 700; }
.down { color: #cf222e; font-weight: 700; }
tr.separator td { background: #eef1f4; font-style: italic; }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .35rem; max-width: 70rem; }
details summary { cursor: pointer; color: #0969da; }
details[open] summary { margin-bottom: .3rem; }
ul.notes { margin: .3rem 0 0; padding-left: 1.2rem; }
code { font-size: .95em; }
""".strip()


def write_html(doc: Document) -> str:
    """The whole document as a standalone page, sections in reading order."""
    title = f"mtl-sweep report: sweep {doc.sweep}"
    out = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>mtl-sweep report: sweep <code>{escape(doc.sweep)}</code></h1>",
        f'<p class="summary">{escape(doc.summary)}</p>',
    ]
    if doc.empty:
        out.append(f"<p>{escape(doc.empty)}</p>")
    for section in doc.sections:
        if not section.title and not section.blocks:
            continue
        out.append(f'<section class="{slug(section.key)}">')
        out += _text(section)
        for block in section.blocks:
            for table in block:
                out += _table(table)
        out.append("</section>")
    out += ["</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def _plain(item: str | Convention) -> str:
    return escape(item.plain if isinstance(item, Convention) else item)


def _text(section: Section) -> list[str]:
    if not section.title:
        return []
    out = [f"<h2>{escape(section.title)}</h2>"]
    if section.listed:
        out.append("<ul>" + "".join(f"<li>{_plain(t)}</li>" for t in section.text) + "</ul>")
    else:
        out += [f"<p>{_plain(t)}</p>" for t in section.text]
    return out


def _table(table: TextTable) -> list[str]:
    rows = table.grid(HTML.cell, lambda label: f"<i>{escape(label)}</i>")
    body = tabulate(
        rows,
        headers=[escape(h) for h in table.headers],
        tablefmt="unsafehtml",
        colalign=table.align,
        disable_numparse=True,
    )
    # A separator row (the reference models) spans the table, as the label of its block.
    body = _SEPARATOR_ROW.sub(
        rf'<tr class="separator"><td colspan="{len(table.headers)}">\1</td></tr>', body
    )
    about = escape(table.caption)
    if table.convention:
        about += " " + escape(table.convention.plain)
    notes = "".join(f"<li>{escape(n)}</li>" for n in table.notes)
    folded = f"<p>{about}</p>" if about else ""
    folded += f'<ul class="notes">{notes}</ul>' if notes else ""
    caption = (
        f"<figcaption><details><summary>About this table</summary>{folded}</details></figcaption>"
        if folded
        else ""
    )
    heading = f"<h{table.level}>{escape(table.title)}</h{table.level}>"
    return [heading, "<figure>", body, caption, "</figure>"] if caption else [heading, body]
