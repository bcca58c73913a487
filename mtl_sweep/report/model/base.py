"""The data every report module shares: the constants, the statistics over seeds
(`Stat`, `Interval`, `Paired`), the comparison tables (`Column`, `Row`, `Table`) and the
task-grouping analyses (`Grouping`), in stored units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

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
