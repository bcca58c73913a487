"""Aggregating a sweep's runs into comparison tables: mean ± std over seeds, Δm, tests.

Rules, in order:
1. Each trial key counts once: its newest FINISHED run (not superseded by a --rerun),
   else its newest run, whose status makes it *failed* (FAILED, KILLED) or *unfinished*.
2. Runs whose configs agree apart from the seed form a row. A seed the other rows of the
   same backbone and pretraining have, but this row has no run for, is *missing*.
3. A cell is the mean ± sample std (ddof=1) over the row's finished seeds, in stored units
   (accuracies as fractions; the renderer shows percent).
4. A multi-task row is compared with the single-task rows of the same backbone, pretraining
   and settings, seed by seed: a paired test per task, and Δm with its interval
   (`compare`). Holm's correction runs over every test of the report.
5. Tables split on the `group_by` keys. Multi-task rows come first, then single-task rows,
   then the reference models (labelled runs) of the same pretraining setting and task.
   Pretraining jobs get a table of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mtl_core import contract as C
from mtl_core.errors import UserError
from mtl_core.tasks import EXTRA_METRICS, PRIMARY_METRIC, Metric
from mtl_core.weightings import WEIGHTINGS as WEIGHTING_REGISTRY
from mtl_sweep.report import GROUP_KEYS
from mtl_sweep.report.compare import compare
from mtl_sweep.report.compare import delta_m as delta_m  # re-exported: callers import it here
from mtl_sweep.report.compare import task_gain as task_gain
from mtl_sweep.report.query import METRIC_KEYS, SweepRuns, config_signature
from mtl_sweep.report.stats import DEFAULT_ALPHA, Interval, Paired, Stat

FINISHED, FAILED, UNFINISHED = "finished", "failed", "unfinished"  # a trial's outcome
MULTI, SINGLE, REFERENCE, PRETRAINING = "multi-task", "single-task", "reference", "pretraining"
WEIGHTINGS = tuple(WEIGHTING_REGISTRY.names())  # row order
METRICS: dict[str, tuple[str, Metric]] = C.TEST_METRICS  # MLflow key -> (task, metric)
# The runs that make one row: everything but the seed.
ROW_KEYS: tuple[str, ...] = (
    "kind",
    "label",
    "backbone",
    "pretrain",
    "tasks_key",
    "weighting",
    "weights_key",
    "signature",
)


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


@dataclass
class Report:
    """Everything the renderers need: the tables and the counts behind the footnotes."""

    uri: str
    experiment: str
    sweep: str
    group_by: tuple[str, ...]
    tables: list[Table]
    counts: dict[str, int]  # trials_finished, trials_failed, ..., pretrain_finished, ...
    alpha: float = DEFAULT_ALPHA  # significance level; intervals are 1 - alpha
    tests: int = 0  # paired t-tests in the report: the family Holm's correction runs over
    groupings: list[Any] = field(default_factory=list)  # grouping_analysis.Grouping


def build_tables(sweep: SweepRuns, group_by: Sequence[str], alpha: float = DEFAULT_ALPHA) -> Report:
    """Aggregate a sweep's runs into tables split on `group_by` (see the module docstring).

    `alpha` is the significance level of the paired tests (0 < alpha < 1).
    """
    from mtl_sweep.report.layout import Order, main_tables, table_of

    group = check_group_by(group_by)
    alpha = check_alpha(alpha)
    trials = resolve_outcomes(sweep.runs)
    rows = _rows(trials)
    # Before the rows are split into tables, so Holm's family is the whole report.
    tests = compare(
        [r for r in rows if r.block == MULTI], [r for r in rows if r.block == SINGLE], alpha
    )
    stage_data = {
        r.pretrain: tuple(sorted({d for ds in r.datasets.values() for d in ds}))
        for r in rows
        if r.block == PRETRAINING
    }
    order = Order.of(rows)
    tables = main_tables(rows, group, stage_data, order)
    jobs = [r for r in rows if r.block == PRETRAINING]
    if jobs:
        tables.append(table_of("Pretraining jobs", order.rows(jobs)))
    return Report(
        uri=sweep.uri,
        experiment=sweep.experiment,
        sweep=sweep.sweep,
        group_by=group,
        tables=tables,
        counts=_counts(trials, rows),
        alpha=alpha,
        tests=tests,
    )


def check_group_by(group_by: Sequence[str]) -> tuple[str, ...]:
    """Validate the grouping keys (an empty sequence, or `none`, means one table)."""
    keys = tuple(k for k in group_by if k and k != "none")
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise UserError(
            f"unknown --group-by key {unknown[0]!r}; known: {', '.join(GROUP_KEYS)}, none"
        )
    return tuple(dict.fromkeys(keys))


def check_alpha(alpha: float) -> float:
    """Validate a significance level: strictly between 0 and 1."""
    if not 0.0 < alpha < 1.0:
        raise UserError(f"--alpha must be between 0 and 1 (exclusive), got {alpha:g}")
    return float(alpha)


def resolve_outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """One record per trial and seed (rules 1 and 2), with `outcome` and `row` columns."""
    df = runs.copy()
    df["ok"] = df["status"].eq("FINISHED") & ~df["superseded"].astype(bool)
    df["outcome"] = np.select(
        [df["ok"], df["status"].isin(["FAILED", "KILLED"])], [FINISHED, FAILED], UNFINISHED
    )
    df["label"] = df["label"].fillna("")
    df["tasks_key"] = df["tasks"].map("+".join)
    df["weights_key"] = df["weights"].map(lambda w: "" if w is None else ",".join(map(str, w)))
    df["signature"] = df["config"].map(config_signature)
    # Prefer a finished run, then the newest: keep="last" after sorting on both.
    df = df.sort_values(["ok", "start_time"], kind="stable").drop_duplicates("key", keep="last")
    df["row"] = df.groupby(list(ROW_KEYS), sort=False).ngroup()
    # Runs logged without a seed tag are numbered in start order, so pairing still works.
    untagged = df["seed"].isna()
    if untagged.any():
        order = df[untagged].sort_values("start_time").groupby("row").cumcount()
        df.loc[untagged, "seed"] = order
    df["seed"] = df["seed"].astype(int)
    # Two trials of the same row and seed (a changed config): keep the newest finished one.
    df = df.sort_values(["ok", "start_time"], kind="stable").drop_duplicates(
        ["row", "seed"], keep="last"
    )
    return df.sort_values(["row", "seed"]).reset_index(drop=True)


def _rows(trials: pd.DataFrame) -> list[Row]:
    """Build each row's cells from the finished trials, with pandas doing the statistics."""
    from mtl_sweep.report.budgets import flag_unmatched, row_budget  # it imports this module

    finished = trials[trials["outcome"] == FINISHED]
    long = finished.melt(
        id_vars=["row", "seed"], value_vars=list(METRIC_KEYS), var_name="metric"
    ).dropna(subset=["value"])
    agg = long.groupby(["row", "metric"])["value"].agg(["mean", "std", "count"])
    # A plain dict: .loc lookups per cell cost more than the whole aggregation.
    stats = {
        (row, metric): Stat(float(mean), float(std), int(count))
        for (row, metric), mean, std, count in agg.itertuples()
    }
    values = {
        (row, metric): dict(zip(g["seed"], g["value"], strict=True))
        for (row, metric), g in long.groupby(["row", "metric"])
    }
    expected = _expected_seeds(trials)

    rows = []
    for row_id, g in trials.groupby("row", sort=True):
        first = g.iloc[0]
        tasks = tuple(first["tasks"])
        keys = [C.TEST + PRIMARY_METRIC[t].name for t in tasks]
        # Extra metrics (age epsilon-error) only where the row's data could log them.
        keys += [
            C.TEST + m.name
            for t in tasks
            for m in EXTRA_METRICS.get(t, ())
            if (row_id, C.TEST + m.name) in stats
        ]
        # A metric the row trained but no finished run logged is Stat(nan, nan, 0): `—`.
        cells = {key: stats.get((row_id, key), Stat(math.nan, math.nan, 0)) for key in keys}
        seeds = set(g["seed"])
        scope = (first["kind"], first["label"], first["backbone"], first["pretrain"])
        rows.append(
            Row(
                name=_row_name(first),
                block=_block(first),
                backbone=first["backbone"],
                pretrain=first["pretrain"],
                tasks=tasks,
                weighting=first["weighting"],
                weights=first["weights"],
                label=first["label"] or None,
                config=dict(first["config"]),
                datasets=_datasets(g["datasets"], tasks),
                cells=cells,
                values={k: values[(row_id, k)] for k in keys if (row_id, k) in values},
                failed=tuple(sorted(g.loc[g["outcome"] == FAILED, "seed"])),
                unfinished=tuple(sorted(g.loc[g["outcome"] == UNFINISHED, "seed"])),
                missing=tuple(sorted(expected.get(scope, set()) - seeds)),
                first_start=int(g["start_time"].min()),
                budget=row_budget(g.loc[g["outcome"] == FINISHED, "budget"]),
            )
        )
    flag_unmatched(rows)
    return rows


def _expected_seeds(trials: pd.DataFrame) -> dict[tuple[str, str, str, str], set[int]]:
    """Seeds each (kind, label, backbone, pretrain) scope ran: a row lacking one misses it."""
    scoped = trials[trials["kind"] == C.KIND_TRIAL]
    groups = scoped.groupby(["kind", "label", "backbone", "pretrain"])["seed"]
    return {key: set(seeds) for key, seeds in groups}


def _block(run: pd.Series) -> str:
    if run["kind"] == C.KIND_PRETRAIN:
        return PRETRAINING
    if run["label"]:
        return REFERENCE
    return MULTI if len(run["tasks"]) > 1 else SINGLE


def _row_name(run: pd.Series) -> str:
    if run["kind"] == C.KIND_PRETRAIN:
        return "Pretrained-" + C.row_name(run["backbone"], run["tasks"])
    if run["label"]:
        return str(run["label"])
    return C.row_name(run["backbone"], run["tasks"])


def _datasets(
    per_run: Iterable[dict[str, str]], tasks: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    from mtl_core.sources import DATASET_NAMES

    out: dict[str, tuple[str, ...]] = {}
    for task in tasks:
        kinds = sorted({d[task] for d in per_run if task in d})
        out[task] = tuple(DATASET_NAMES.get(k, k) for k in kinds)
    return out


def _counts(trials: pd.DataFrame, rows: list[Row]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, name in ((C.KIND_TRIAL, "trials"), (C.KIND_PRETRAIN, "pretrain")):
        outcome = trials.loc[trials["kind"] == kind, "outcome"]
        for what in (FINISHED, FAILED, UNFINISHED):
            out[f"{name}_{what}"] = int((outcome == what).sum())
    out["trials_missing"] = sum(len(r.missing) for r in rows)
    return out
