"""The document: what a reader sees, as format-neutral text. A `Document` holds `Section`s;
a section holds display tables (`TextTable`) of `Cell`s, its JSON payload and its CSV
records, and the figures hold panels. One writer per format (report/writers/) turns a
document into markdown, HTML, LaTeX, CSV, JSON or a plot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtl_sweep.report.model.base import Grouping
from mtl_sweep.report.model.fronts import Front

# --- the document: what every format shows -------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One table cell as plain text; each writer escapes it, bolds it and appends the
    marker of `sign` (+1 ▲, -1 ▼) in its own markup."""

    text: str
    bold: bool = False
    sign: int = 0


@dataclass(frozen=True)
class Separator:
    """A row that opens a block of the table, e.g. the reference models."""

    label: str


@dataclass(frozen=True)
class Convention:
    """A formula stated under a table: plain text for most formats, its own math in LaTeX.
    Every format shows `tail` (plain text) after the formula."""

    text: str
    latex: str  # already LaTeX
    tail: str = ""

    @property
    def plain(self) -> str:
        """The formula and its tail as plain text."""
        return f"{self.text} {self.tail}".strip()


@dataclass
class TextTable:
    """A table as a reader sees it: headings, cell text, a caption and footnotes."""

    title: str
    headers: list[str]
    rows: list[list[Cell] | Separator]
    caption: str
    align: list[str] | None = None  # "left"/"right" per column; None: the writer's default
    level: int = 2  # heading level: 2 for a table, 3 for one that details the table above
    convention: Convention | None = None  # a formula the table's numbers follow
    notes: list[str] = field(default_factory=list)  # footnotes
    float_title: str = ""  # the title inside a float's caption (LaTeX); empty: `title`
    label: str = ""  # a name unique in the document, for cross-references (LaTeX labels)

    def grid(self, cell: Callable[[Cell], str], separator: Callable[[str], str]) -> list[list[str]]:
        """The rows as strings in one format: `cell` writes a cell, `separator` the first
        cell of a separator row (the rest of that row is blank)."""
        blank = [""] * (len(self.headers) - 1)
        return [
            [separator(row.label), *blank] if isinstance(row, Separator) else list(map(cell, row))
            for row in self.rows
        ]


@dataclass
class Section:
    """One part of the report in every format: display tables for the text formats, a
    JSON payload under `key`, and flat records for the CSV. A section with a `title`
    opens with it and its `text` (paragraphs, or a bulleted list when `listed`); a
    Convention in the text is a formula, in LaTeX's own math there."""

    key: str  # the JSON document's key for `data`
    blocks: list[list[TextTable]]  # each block: a table and the tables that detail it
    data: Any  # JSON-ready (dicts, lists, numbers, strings, None)
    records: list[dict[str, Any]] = field(default_factory=list)
    first: tuple[str, ...] = ()  # CSV columns that lead, in order, even with no record
    last: tuple[str, ...] = ()  # CSV columns that close the line
    title: str = ""  # a heading of its own (level 2), before the text
    text: list[str | Convention] = field(default_factory=list)  # plain text, each format escapes
    listed: bool = False  # the text as a bulleted list, not paragraphs


@dataclass(frozen=True)
class ForestRow:
    """One line of a forest-plot panel: a multi-task cell's mean paired gain and its
    interval, in display units."""

    label: str
    mean: float
    low: float  # NaN with one seed: no interval drawn
    high: float
    direction: int  # +1 significantly better, -1 worse, 0 neither (or no test)
    n: int


@dataclass(frozen=True)
class ForestPanel:
    """One task's rows of `--plot`'s forest plot (or Δm's), on one shared axis."""

    axis: str  # the x label: what, its unit, which side is better
    rows: list[ForestRow]
    decimals: int  # of the values written beside the rows
    alpha: float


@dataclass(frozen=True)
class AffinityPanel:
    """One heatmap of Z(i→j) for `--plot`: an analysis with affinities."""

    grouping: Grouping


@dataclass(frozen=True)
class FrontPanel:
    """One task pair's trade-off front for `--plot`."""

    title: str
    front: Front
    alpha: float


@dataclass(frozen=True)
class SensitivityPanel:
    """One searched dimension and one task for `--plot`: the validation objective of every
    search run against its value, one series per cell that trains the task."""

    key: str  # the searched key, e.g. optimizer.lr
    task: str
    log: bool  # loguniform: a log-scaled x axis
    series: list[tuple[str, list[tuple[float, float, bool]]]]  # cell name, (value, obj, stopped)
    objective: str  # relative or val_loss


@dataclass
class Figure:
    """One image file of `--plot`: panels a plot writer draws, one per subplot.
    `suffix` names the file after the main one (empty: the main file itself); `required`,
    when set, is the error for a figure with no panel."""

    panels: list[Any]
    suffix: str = ""
    required: str = ""


@dataclass
class Document:
    """The whole report in format-neutral form: header, sections, figures."""

    sweep: str
    summary: str  # one line under the title
    empty: str  # what a text format says when no section has a table; empty otherwise
    meta: dict[str, Any]  # the JSON document's leading fields
    sections: list[Section]
    figures: list[Figure] = field(default_factory=list)
