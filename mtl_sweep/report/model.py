"""The report's data model, at the bottom of the package: every report module imports it,
and it imports none of them.

Two layers of plain data:
- the *analysis*: a `Report` of `Table`s of `Row`s, with their statistics (`Stat`,
  `Interval`, `Paired`) and the task-grouping analyses (`Grouping`), in stored units;
- the *document*: what a reader sees, as format-neutral text. A `Document` holds
  `Section`s; a section holds display tables (`TextTable`), its JSON payload and its CSV
  records, and the figures hold panels. One writer per format (report/writers/) turns a
  document into markdown, HTML, LaTeX, CSV, JSON or a plot, so a new section is one new
  builder and no writer changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtl_core import contract as C
from mtl_core.tasks import Metric
from mtl_core.weightings import WEIGHTINGS as WEIGHTING_REGISTRY

# --- constants every layer shares ----------------------------------------------------------

FORMATS: tuple[str, ...] = ("markdown", "github", "latex", "csv", "html", "json")
GROUP_KEYS: tuple[str, ...] = ("backbone", "pretrain", "weighting")  # what tables split on
DEFAULT_GROUP_BY: tuple[str, ...] = ("backbone", "pretrain")  # one table per backbone x pretrain
DEFAULT_ALPHA = 0.05  # significance level of the paired tests; intervals are 1 - alpha

FINISHED, FAILED, UNFINISHED = "finished", "failed", "unfinished"  # a trial's outcome
MULTI, SINGLE, REFERENCE, PRETRAINING = "multi-task", "single-task", "reference", "pretraining"
WEIGHTINGS = tuple(WEIGHTING_REGISTRY.names())  # row order
METRICS: dict[str, tuple[str, Metric]] = C.TEST_METRICS  # MLflow key -> (task, metric)

MISSING = "—"  # a cell the row trained but has no finished run for
BETTER, WORSE = "▲", "▼"  # significantly better / worse than single-task (Holm-adjusted)

# Task groupings: where a network's score comes from, and the names of task sets.
MEASURED, ESTIMATED, SINGLE_BASIS, AFFINITY = "measured", "estimated", "single-task", "affinity"
Subset = tuple[str, ...]  # tasks of one network, in canonical order
Pair = tuple[str, str]  # (source, target)


# --- statistics over seeds -----------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof=1) over n seeds; NaN std when n < 2, NaN mean when n = 0."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        """The Stat of some values (per-seed results)."""
        arr = np.asarray(list(values), dtype=float)
        if arr.size == 0:
            return cls(math.nan, math.nan, 0)
        std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
        return cls(float(arr.mean()), std, int(arr.size))


@dataclass(frozen=True)
class Interval(Stat):
    """A Stat with its two-sided Student-t confidence interval; NaN bounds when n < 2."""

    low: float = math.nan
    high: float = math.nan


@dataclass(frozen=True)
class Paired:
    """One multi-task cell against its single-task baseline, paired by seed.

    Values are in the metric's stored units. `p_value` is NaN where there is no test
    (`no_test` says why); `p_adjusted` and `significant` are set by Holm's correction.
    """

    seeds: tuple[int, ...]  # the seeds both sides finished
    mtl_mean: float  # over `seeds`
    stl_mean: float
    diff_mean: float  # mean signed gain: + means multi-task is better
    diff_std: float  # sample std of the gains
    ci_low: float  # confidence interval of diff_mean (NaN when n < 2)
    ci_high: float
    p_value: float  # two-sided paired t-test (scipy.stats.ttest_rel)
    p_wilcoxon: float  # two-sided Wilcoxon signed-rank, only where n >= WILCOXON_MIN_N
    no_test: str = ""  # "n = 1" or "no spread": why p_value is NaN
    p_adjusted: float = math.nan  # Holm over the report's tests
    significant: bool = False  # p_adjusted < alpha

    @property
    def n(self) -> int:
        """The number of pairs (seeds both sides finished)."""
        return len(self.seeds)

    @property
    def tested(self) -> bool:
        """Whether a t-test was run (n >= 2 and the gains vary)."""
        return not math.isnan(self.p_value)

    @property
    def direction(self) -> int:
        """+1 significantly better, -1 significantly worse, 0 otherwise."""
        if not self.significant:
            return 0
        return 1 if self.diff_mean > 0 else -1


# --- the comparison tables -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A metric column: its MLflow key and the datasets its rows' values came from."""

    key: str  # e.g. test/age_mae
    task: str
    metric: Metric
    datasets: tuple[str, ...]  # display names, e.g. ("ChaLearn 2016",); empty when unknown

    @property
    def heading(self) -> str:
        """e.g. `Age MAE (ChaLearn 2016)`; just the metric where no run logged its data."""
        if not self.datasets:
            return self.metric.label
        return f"{self.metric.label} ({' / '.join(self.datasets)})"


@dataclass
class Row:
    """One table row: the runs of one configuration over its seeds."""

    name: str  # e.g. ResNet-18-Age_Gender, a reference label, Pretrained-ResNet-18-Age_Gender
    block: str  # MULTI, SINGLE, REFERENCE or PRETRAINING
    backbone: str
    pretrain: str  # none, or the stage name
    tasks: tuple[str, ...]
    weighting: str
    weights: tuple[float, ...] | None  # fixed loss weights over `tasks`; None = not logged
    label: str | None
    config: dict[str, str]  # train./data./source. params shared by the row's runs
    datasets: dict[str, tuple[str, ...]]  # task -> data source display names
    cells: dict[str, Stat]  # metric key -> over finished seeds; absent = not trained
    values: dict[str, dict[int, float]]  # metric key -> seed -> value, finished runs
    failed: tuple[int, ...] = ()  # seeds whose trial failed
    unfinished: tuple[int, ...] = ()  # seeds still running (or only superseded)
    missing: tuple[int, ...] = ()  # seeds with no run at all
    delta_m: Interval | None = None  # Δm (%) over the seeds shared with every baseline
    delta_note: str = ""  # why there is no Δm, for a multi-task row
    gains: dict[str, Interval] = field(default_factory=dict)  # task -> term of Δm, %
    paired: dict[str, Paired] = field(default_factory=dict)  # task -> test vs single-task
    variant: str = ""  # params that tell apart rows that would otherwise look the same
    first_start: int = 0  # ms; when the row's first run started (orders the backbones)
    budget: dict[str, float] = field(default_factory=dict)  # budget/* metrics (report/budgets)
    budget_note: str = ""  # multi-task rows: how its budget differs from its baselines'
    ident: tuple[object, ...] = ()  # what identifies the row's runs (tables.ROW_KEYS values)

    @property
    def weights_text(self) -> str:
        """`1, 0.1, 1, 1` in task order, the adaptive strategy's name, or empty."""
        if self.block != MULTI:
            return ""
        if self.weighting != "fixed":
            return self.weighting
        if self.weights is None:
            return "fixed"
        return ", ".join(f"{w:g}" for w in self.weights)

    @property
    def look(self) -> tuple[str, str, str, str]:
        """What a reader tells rows apart by (block, name, weights, pretraining): rows that
        share it need their differing params shown (`variant`)."""
        return (self.block, self.name, self.weights_text, self.pretrain)


@dataclass
class Table:
    """One comparison table."""

    title: str
    columns: list[Column]
    rows: list[Row]

    @property
    def show_pretrain(self) -> bool:
        """Whether rows differ in pretraining (then it needs its own column)."""
        return len({r.pretrain for r in self.rows}) > 1

    @property
    def has_weights(self) -> bool:
        """Whether any row is multi-task (then a weights and a Δm column are shown)."""
        return any(r.block == MULTI for r in self.rows)

    @property
    def has_variant(self) -> bool:
        """Whether some rows need their differing params shown."""
        return any(r.variant for r in self.rows)

    def common_n(self) -> int | None:
        """The seed count every non-empty cell shares, or None when they differ."""
        ns = {s.n for r in self.rows for s in r.cells.values() if s.n}
        ns |= {r.delta_m.n for r in self.rows if r.delta_m is not None and self.has_weights}
        return ns.pop() if len(ns) == 1 else None


# --- task groupings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """How one task is served in a selection."""

    task: str
    network: Subset
    basis: str  # MEASURED, ESTIMATED or SINGLE_BASIS
    gain: float  # % against the task's single-task result (seed means)
    metric: float  # the served metric in stored units; implied by the gain when estimated


@dataclass(frozen=True)
class Selection:
    """One selection of at most k networks, scored on the measured cells."""

    k: int
    networks: tuple[Subset, ...]
    bases: tuple[str, ...]  # each network's MEASURED, ESTIMATED or SINGLE_BASIS
    score: Stat  # mean over tasks of the served gain (%); Δm against all single-task
    vs_all: float | None  # score minus the one all-task network's score (percentage points)
    served: tuple[Served, ...]

    @property
    def estimated(self) -> bool:
        """Whether the selection has an estimated (not trained) network."""
        return ESTIMATED in self.bases


@dataclass(frozen=True)
class AffinityChoice:
    """TAG's selection of at most k networks, with its measured score where one exists."""

    k: int
    networks: tuple[Subset, ...]
    affinity: float  # mean over tasks of the affinity onto each task from its group
    measured: Selection | None  # the same networks scored on the cells (or their estimates)


@dataclass
class Grouping:
    """The grouping analysis of one scope."""

    title: str
    tasks: tuple[str, ...]
    measured: list[Selection]  # best per k from trained networks only
    estimated: list[Selection]  # per k, where a selection with an estimated network wins
    all_task: Selection | None  # one network on every task (measured, else estimated)
    affinity: dict[Pair, Stat] = field(default_factory=dict)  # Z(i→j), mean over seeds
    affinity_row: str = ""  # the row whose runs logged the affinities
    affinity_params: str = ""  # what their lookahead stepped (train.affinity.params)
    by_affinity: list[AffinityChoice] = field(default_factory=list)
    spearman: tuple[float, float, int] | None = None  # rho, p, n: affinity vs pair gain
    notes: list[str] = field(default_factory=list)


# --- trade-off fronts ----------------------------------------------------------------------

DOMINATED, FRONT, BEYOND = "dominated", "front", "beyond"  # an adaptive strategy's verdict
FIXED = "fixed"  # the hypervolume entry of the fixed-weight front


@dataclass(frozen=True)
class Point:
    """One configuration on a pair's two axes: means and intervals in stored units."""

    name: str  # the weights as text (`0.18, 1.82`), a strategy, or `single-task`
    weights: tuple[float, ...] | None  # fixed weights over the set's tasks; None otherwise
    axes: tuple[Interval, Interval]  # per task of the pair: mean, std, n and the interval
    values: tuple[dict[int, float], dict[int, float]]  # per task: seed -> value

    @property
    def means(self) -> tuple[float, float]:
        """The mean per task of the pair."""
        return (self.axes[0].mean, self.axes[1].mean)


@dataclass(frozen=True)
class FrontVerdict:
    """Where an adaptive strategy's mean point lies against the fixed-weight front."""

    point: Point
    verdict: str  # DOMINATED, FRONT or BEYOND
    # The weighting the tests compare with: the best dominating weighting (dominated) or
    # the best front point it dominates (beyond); None on the front.
    versus: Point | None = None
    # Task -> paired test; its gains are signed so that + favours the dominating side.
    tests: dict[str, Paired] = field(default_factory=dict)

    @property
    def dominated_by(self) -> tuple[float, ...] | None:
        """The weights of the best fixed weighting that dominates it, or None."""
        return self.versus.weights if self.verdict == DOMINATED and self.versus else None

    @property
    def dominates(self) -> tuple[float, ...] | None:
        """The weights of the front point it dominates (beyond), or None."""
        return self.versus.weights if self.verdict == BEYOND and self.versus else None


@dataclass(frozen=True)
class Front:
    """One task pair of one multi-task set: its fixed weightings, front and strategies."""

    backbone: str
    pretrain: str
    tasks: tuple[str, ...]  # the multi-task set the rows trained
    pair: tuple[str, str]  # the two tasks on the axes, in canonical order
    variant: str = ""  # the params that tell its rows apart from others' (Row.variant)
    seeds: tuple[int, ...] = ()  # the seeds every fixed weighting finished
    points: list[Point] = field(default_factory=list)  # the fixed weightings
    on_front: list[bool] = field(default_factory=list)  # per point: non-dominated; [] undrawn
    singles: dict[str, Point] = field(default_factory=dict)  # task -> single-task point
    strategies: list[FrontVerdict] = field(default_factory=list)  # judged by the front
    unjudged: tuple[str, ...] = ()  # adaptive strategies with no front to judge them by
    hypervolume: dict[str, float] = field(default_factory=dict)  # FIXED or strategy -> HV
    notes: list[str] = field(default_factory=list)  # why a front, verdict or HV is missing

    @property
    def drawn(self) -> bool:
        """Whether the pair has a front (enough weightings on shared seeds)."""
        return bool(self.on_front)

    @property
    def front(self) -> list[Point]:
        """The non-dominated fixed weightings (none where no front is drawn)."""
        return [p for p, on in zip(self.points, self.on_front, strict=False) if on]


# --- tuned sweeps (docs/tuning.md) ----------------------------------------------------------

BUDGET_TOLERANCE = 0.10  # compared cells whose search steps differ by more are flagged
OUTER = 0.10  # a chosen value this close to a range's end (log space for loguniform) warns
DAGGER = "†"  # marks a comparison whose arms' search steps differ by more than the tolerance


@dataclass(frozen=True)
class SearchPoint:
    """One search run as the report sees it."""

    index: int  # sample index in its cell
    values: dict[str, Any]  # search key -> sampled value
    objective: float  # its best round's validation objective; the last one reached if stopped
    steps: int  # optimizer steps it ran
    stopped: bool  # stopped early by its cell's scheduler
    run_id: str


@dataclass
class TunedCell:
    """One cell's search: its samples, the winner its final runs retrain, what it spent."""

    cell: str  # the cell id (tag mtl_sweep.cell)
    name: str  # e.g. ResNet-18-Age
    backbone: str
    pretrain: str
    tasks: tuple[str, ...]
    weighting: str
    points: list[SearchPoint]
    chosen: SearchPoint | None  # the winner its final runs name (mtl_sweep.tuned_from)
    steps: int  # optimizer steps over its search runs, stopped ones for what they ran
    edges: list[str] = field(default_factory=list)  # searched keys chosen in an outer 10%
    flagged: list[str] = field(default_factory=list)  # comparisons whose steps differ > 10%

    @property
    def full(self) -> list[SearchPoint]:
        """The samples that ran the full budget (the only ones that can win)."""
        return [p for p in self.points if not p.stopped and math.isfinite(p.objective)]

    @property
    def spread(self) -> Stat:
        """Mean and std of the full-budget samples' objectives."""
        return Stat.of(p.objective for p in self.full)


@dataclass
class Tuning:
    """How a tuned sweep's tables were tuned: the protocol and every cell's search."""

    space: dict[str, dict[str, list[Any]]]  # search key -> {distribution: args}
    samples: int
    algorithm: str
    scheduler: str
    objective: str
    cells: list[TunedCell]
    comparisons: list[tuple[str, list[str], float]] = field(default_factory=list)
    # (multi-task cell, its single-task cells, max/min of their search steps)


# --- findings: the two questions, answered ---------------------------------------------------

# A verdict: multi-task against single-task, or pretrained against not (report/findings.py).
VERDICT_BETTER, VERDICT_WORSE = "better", "worse"  # significant after Holm, that direction
NO_DIFFERENCE = "no detectable difference"  # tested, not significant
UNTESTED = "not testable"  # one seed, or no spread
DELTA_M = "Δm"  # a contrast over all of a cell's tasks


@dataclass(frozen=True)
class Verdict:
    """One task of one multi-task cell against single-task."""

    task: str
    verdict: str  # VERDICT_BETTER, VERDICT_WORSE, NO_DIFFERENCE or UNTESTED
    test: Paired  # its paired test, Holm-adjusted over the report's family
    detectable: float  # smallest gain detected with 80% power (stored units); NaN if untested


@dataclass(frozen=True)
class CellFinding:
    """One multi-task row's findings."""

    row: Row
    delta_m: Interval | None  # Δm (%) with its interval; None when it could not be made
    verdicts: tuple[Verdict, ...]  # in task order, for the tasks with a baseline


@dataclass(frozen=True)
class GroupFinding:
    """The multi-task cells of one backbone x pretraining setting."""

    backbone: str
    pretrain: str
    cells: tuple[CellFinding, ...]


@dataclass(frozen=True)
class Contrast:
    """Pretrained − not, paired by seed, for Δm or one task's gain.

    `test.mtl_mean` is the mean with pretraining and `test.stl_mean` without; `diff_*`
    and the interval are of the difference (positive: pretraining raises the gain).
    """

    what: str  # DELTA_M or a task
    test: Paired
    verdict: str  # VERDICT_BETTER (pretraining raises it), VERDICT_WORSE, NO_DIFFERENCE, UNTESTED
    detectable: float  # smallest difference detected with 80% power; NaN if untested


@dataclass(frozen=True)
class Interaction:
    """Whether pretraining changes one multi-task cell's gain over single-task."""

    pretrained: Row  # the cell trained after the stage
    scratch: Row  # the same cell with no pretraining
    contrasts: tuple[Contrast, ...]  # Δm first, then each task in task order

    @property
    def delta(self) -> Contrast | None:
        """The Δm contrast, if both sides have Δm on a shared seed."""
        return next((c for c in self.contrasts if c.what == DELTA_M), None)


@dataclass(frozen=True)
class Findings:
    """Everything the findings section shows."""

    groups: tuple[GroupFinding, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    unmatched: tuple[Row, ...] = ()  # pretrained multi-task cells with no unpretrained twin
    alpha: float = DEFAULT_ALPHA
    tests: int = 0  # the size of the Holm family: the paired and the interaction tests


@dataclass
class Report:
    """The analysis of one sweep: its tables, the counts behind the footnotes, groupings."""

    uri: str
    experiment: str
    sweep: str
    group_by: tuple[str, ...]
    tables: list[Table]
    counts: dict[str, int]  # trials_finished, trials_failed, ..., pretrain_finished, ...
    alpha: float = DEFAULT_ALPHA  # significance level; intervals are 1 - alpha
    tests: int = 0  # paired and interaction t-tests: the family Holm's correction runs over
    groupings: list[Grouping] = field(default_factory=list)
    tuning: Tuning | None = None  # a tuned sweep's search (the tables hold its final runs)
    findings: Findings = field(default_factory=Findings)
    fronts: list[Front] = field(default_factory=list)  # report/fronts.py


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
