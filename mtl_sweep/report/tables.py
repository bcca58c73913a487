"""Aggregating a sweep's runs into comparison tables: mean ± std over seeds, and Δm.

Rules, in order:
1. Each trial key counts once: its newest FINISHED run (not superseded by a --rerun),
   else its newest run, whose status makes it *failed* (FAILED, KILLED) or *unfinished*.
2. Runs whose configs agree apart from the seed form a row. A seed the other rows of the
   same backbone and pretraining have, but this row has no run for, is *missing*.
3. A cell is the mean ± sample std (ddof=1) over the row's finished seeds, in stored units
   (accuracies as fractions; the renderer shows percent).
4. Δm compares a multi-task row with the single-task rows of the same backbone, pretraining
   and settings, over the seeds they share (`delta_m`).
5. Tables split on the `group_by` keys. Multi-task rows come first, then single-task rows,
   then the reference models (labelled runs) of the same pretraining setting and task.
   Pretraining jobs get a table of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mtl_sweep import contract as C
from mtl_sweep.errors import UserError
from mtl_sweep.models import display_name
from mtl_sweep.report import GROUP_KEYS
from mtl_sweep.report.query import METRIC_KEYS, SweepRuns, config_signature
from mtl_sweep.tasks import EXTRA_METRICS, PRIMARY_METRIC, TASKS, Metric
from mtl_sweep.validate import WEIGHTINGS as VALID_WEIGHTINGS

FINISHED, FAILED, UNFINISHED = "finished", "failed", "unfinished"  # a trial's outcome
MULTI, SINGLE, REFERENCE, PRETRAINING = "multi-task", "single-task", "reference", "pretraining"
WEIGHTINGS = VALID_WEIGHTINGS  # row order
METRICS: dict[str, tuple[str, Metric]] = {  # MLflow key -> (task, metric)
    C.TEST + m.name: (t, m) for t in TASKS for m in (PRIMARY_METRIC[t], *EXTRA_METRICS.get(t, ()))
}
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
    delta_m: Stat | None = None  # Δm (%): mean from the seed means, std over per-seed Δm
    delta_note: str = ""  # why there is no Δm, for a multi-task row
    gains: dict[str, Stat] = field(default_factory=dict)  # task -> gain over single-task, %
    variant: str = ""  # params that tell apart rows that would otherwise look the same
    first_start: int = 0  # ms; when the row's first run started (orders the backbones)

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
    groupings: list[Any] = field(default_factory=list)  # grouping_analysis.Grouping


def task_gain(task: str, mtl: float, stl: float) -> float:
    """One task's term of Δm, in percent: 100 s_t (M_t - S_t) / S_t.

    s_t = +1 where higher is better (accuracies), -1 where lower is better (age MAE), so a
    positive gain means the multi-task model is better on that task.
    """
    return 100.0 * PRIMARY_METRIC[task].sign * (mtl - stl) / stl


def delta_m(mtl: Mapping[str, float], stl: Mapping[str, float]) -> float:
    """Δm (%), the multi-task gain over single-task averaged over the T tasks:

        Δm = 100/T Σ_t s_t (M_t - S_t) / S_t

    M_t is the multi-task metric and S_t the single-task one, in stored units (accuracy
    fractions; the ratio does not depend on the unit). s_t = +1 where higher is better and
    -1 where lower is better. Positive means multi-task helps. REFERENCES.md's example:
    gender 90.2 vs 89.1, smile 87.0 vs 86.2, emotion 55.2 vs 51.5, age MAE 11.8 vs 11.4
    gives +1.46.
    """
    if set(mtl) != set(stl) or not mtl:
        raise ValueError(
            f"Δm needs the same tasks on both sides, got {sorted(mtl)} and {sorted(stl)}"
        )
    return sum(task_gain(t, mtl[t], stl[t]) for t in mtl) / len(mtl)


def build_tables(sweep: SweepRuns, group_by: Sequence[str]) -> Report:
    """Aggregate a sweep's runs into tables split on `group_by` (see the module docstring)."""
    group = check_group_by(group_by)
    trials = resolve_outcomes(sweep.runs)
    rows = _rows(trials)
    for row in rows:
        if row.block == MULTI:
            _attach_delta_m(row, [r for r in rows if r.block == SINGLE])
    stage_data = {
        r.pretrain: tuple(sorted({d for ds in r.datasets.values() for d in ds}))
        for r in rows
        if r.block == PRETRAINING
    }
    order = _Order.of(rows)
    tables = _main_tables(rows, group, stage_data, order)
    jobs = [r for r in rows if r.block == PRETRAINING]
    if jobs:
        tables.append(_table("Pretraining jobs", order.rows(jobs)))
    return Report(
        uri=sweep.uri,
        experiment=sweep.experiment,
        sweep=sweep.sweep,
        group_by=group,
        tables=tables,
        counts=_counts(trials, rows),
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
            )
        )
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
    from mtl_sweep.spec import DATASET_NAMES

    out: dict[str, tuple[str, ...]] = {}
    for task in tasks:
        kinds = sorted({d[task] for d in per_run if task in d})
        out[task] = tuple(DATASET_NAMES.get(k, k) for k in kinds)
    return out


def _agrees(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two configs agree on every param both have."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def _attach_delta_m(row: Row, singles: list[Row]) -> None:
    """Δm of a multi-task row, and its per-task gains, over the seeds it shares with the
    single-task rows of the same backbone, pretraining and settings."""
    baselines: dict[str, Row] = {}
    for task in row.tasks:
        found = [
            s
            for s in singles
            if s.tasks == (task,)
            and s.backbone == row.backbone
            and s.pretrain == row.pretrain
            and _agrees(s.config, row.config)
        ]
        if len(found) != 1:
            what = "no" if not found else "more than one"
            row.delta_note = f"{what} single-task {task} row with the same settings"
            return
        baselines[task] = found[0]
    keys = {t: C.TEST + PRIMARY_METRIC[t].name for t in row.tasks}
    shared = set.intersection(
        *(
            set(row.values.get(keys[t], {})) & set(baselines[t].values.get(keys[t], {}))
            for t in row.tasks
        )
    )
    if not shared:
        row.delta_note = "no finished seed shared with every single-task row"
        return
    seeds = sorted(shared)

    def at(r: Row, task: str, s: int) -> float:
        return r.values[keys[task]][s]

    mtl = {t: float(np.mean([at(row, t, s) for s in seeds])) for t in row.tasks}
    stl = {t: float(np.mean([at(baselines[t], t, s) for s in seeds])) for t in row.tasks}
    per_seed = [
        delta_m(
            {t: at(row, t, s) for t in row.tasks}, {t: at(baselines[t], t, s) for t in row.tasks}
        )
        for s in seeds
    ]
    row.delta_m = Stat(delta_m(mtl, stl), Stat.of(per_seed).std, len(seeds))
    for t in row.tasks:
        paired = [task_gain(t, at(row, t, s), at(baselines[t], t, s)) for s in seeds]
        row.gains[t] = Stat(task_gain(t, mtl[t], stl[t]), Stat.of(paired).std, len(seeds))


@dataclass(frozen=True)
class _Order:
    """Sort keys. Backbones come in the order the sweep first started them (its grid order),
    no pretraining before the stages, weightings as in WEIGHTINGS."""

    backbones: Mapping[str, int]  # backbone -> rank

    @classmethod
    def of(cls, rows: Iterable[Row]) -> _Order:
        first: dict[str, int] = {}
        for r in rows:
            first[r.backbone] = min(first.get(r.backbone, r.first_start), r.first_start)
        ranked = sorted(first, key=lambda b: (first[b], b))
        return cls({b: i for i, b in enumerate(ranked)})

    def value(self, key: str, value: str) -> tuple[object, ...]:
        """Where a value of a grouping key sorts."""
        if key == "backbone":
            return (self.backbones.get(value, len(self.backbones)), value)
        if key == "pretrain":
            return (value != "none", value)
        return (WEIGHTINGS.index(value) if value in WEIGHTINGS else len(WEIGHTINGS), value)

    def rows(self, rows: Iterable[Row]) -> list[Row]:
        """Multi-task rows first (more tasks first, equal weights first), then single-task
        rows in task order, then the reference models; pretraining jobs by backbone."""
        blocks = (MULTI, PRETRAINING, SINGLE, REFERENCE)

        def key(r: Row) -> tuple[object, ...]:
            return (
                blocks.index(r.block),
                r.label or "",
                self.value("backbone", r.backbone),
                self.value("pretrain", r.pretrain),
                -len(r.tasks),
                tuple(TASKS.index(t) for t in r.tasks),
                self.value("weighting", r.weighting),
                tuple(-w for w in r.weights or ()),
                sorted(r.config.items()),
            )

        return sorted(rows, key=key)


def _group_title(
    group: tuple[str, ...], values: tuple[str, ...], stage_data: Mapping[str, tuple[str, ...]]
) -> str:
    parts = []
    for key, value in zip(group, values, strict=True):
        if key == "backbone":
            parts.append(display_name(value))
        elif key == "pretrain":
            data = stage_data.get(value)
            parts.append(
                "no pretraining"
                if value == "none"
                else f"pretrained on {value}" + (f" ({', '.join(data)})" if data else "")
            )
        else:
            parts.append(f"{value} weighting")
    return ", ".join(parts) or "All trials"


def _main_tables(
    rows: list[Row],
    group: tuple[str, ...],
    stage_data: Mapping[str, tuple[str, ...]],
    order: _Order,
) -> list[Table]:
    """Split the main rows on `group`, then place each reference model (rule 5)."""
    main = [r for r in rows if r.block in (MULTI, SINGLE)]
    buckets: dict[tuple[str, ...], list[Row]] = {}
    for r in main:
        buckets.setdefault(tuple(getattr(r, k) for k in group), []).append(r)
    keys = sorted(buckets, key=lambda v: [order.value(k, x) for k, x in zip(group, v, strict=True)])
    placed: dict[tuple[str, ...], list[Row]] = {v: [] for v in keys}
    unplaced = []
    for ref in (r for r in rows if r.block == REFERENCE):
        homes = [
            v
            for v in keys
            if all(getattr(ref, k) == x for k, x in zip(group, v, strict=True) if k != "backbone")
            and set(ref.tasks) <= {t for r in buckets[v] for t in r.tasks}
        ]
        for v in homes:
            placed[v].append(ref)
        if not homes:
            unplaced.append(ref)
    tables = [
        _table(_group_title(group, v, stage_data), order.rows(buckets[v] + placed[v])) for v in keys
    ]
    if unplaced:
        tables.append(_table("Reference models", order.rows(unplaced)))
    return tables


def _table(title: str, rows: list[Row]) -> Table:
    """A table over `rows`: one column per metric any row trained, headed with its data."""
    columns = []
    for key, (task, metric) in METRICS.items():
        having = [r for r in rows if key in r.cells]
        if having:
            datasets = sorted({d for r in having for d in r.datasets.get(task, ())})
            columns.append(Column(key, task, metric, tuple(datasets)))
    rows = [_with_variant(r, rows) for r in rows]
    return Table(title=title, columns=columns, rows=rows)


def _with_variant(row: Row, rows: list[Row]) -> Row:
    """Name the params that tell `row` apart from rows that would look the same."""
    twins = [
        r
        for r in rows
        if (r.block, r.name, r.weights_text, r.pretrain)
        == (row.block, row.name, row.weights_text, row.pretrain)
    ]
    if len(twins) < 2:
        return row
    keys = sorted({k for r in twins for k in r.config})
    differ = [k for k in keys if len({r.config.get(k) for r in twins}) > 1]
    text = ", ".join(f"{k}={row.config.get(k, '-')}" for k in differ)
    # Copy: a reference row may sit in several tables with different twins.
    return replace(row, variant=text)


def _counts(trials: pd.DataFrame, rows: list[Row]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, name in ((C.KIND_TRIAL, "trials"), (C.KIND_PRETRAIN, "pretrain")):
        outcome = trials.loc[trials["kind"] == kind, "outcome"]
        for what in (FINISHED, FAILED, UNFINISHED):
            out[f"{name}_{what}"] = int((outcome == what).sum())
    out["trials_missing"] = sum(len(r.missing) for r in rows)
    return out
