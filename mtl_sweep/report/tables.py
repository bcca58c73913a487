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
   (`compare`). Where a multi-task cell ran with and without pretraining, the difference
   is tested too (`findings`). Holm's correction runs over every test of the report.
5. Tables split on the `group_by` keys. Multi-task rows come first, then single-task rows,
   then the reference models (labelled runs) of the same pretraining setting and task.
   Pretraining jobs get a table of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mtl_core import contract as C
from mtl_core.errors import UserError
from mtl_core.sources import DATASET_NAMES
from mtl_core.tasks import EXTRA_METRICS, PRIMARY_METRIC
from mtl_sweep.report.budgets import flag_unmatched, row_budget
from mtl_sweep.report.compare import compare
from mtl_sweep.report.findings import analyse
from mtl_sweep.report.layout import Order, main_tables, table_of
from mtl_sweep.report.model.base import (
    DEFAULT_ALPHA,
    FAILED,
    FINISHED,
    GROUP_KEYS,
    MULTI,
    PRETRAINING,
    REFERENCE,
    SINGLE,
    UNFINISHED,
    Row,
    Stat,
)
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.query import METRIC_KEYS, SweepRuns, config_signature

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


def build_tables(sweep: SweepRuns, group_by: Sequence[str], alpha: float = DEFAULT_ALPHA) -> Report:
    """Aggregate a sweep's runs into tables split on `group_by` (see the module docstring).

    `alpha` is the significance level of the paired tests (0 < alpha < 1).
    """
    group = check_group_by(group_by)
    alpha = check_alpha(alpha)
    trials = resolve_outcomes(sweep.runs)
    rows = _rows(trials)
    # Before the rows are split into tables, so Holm's family is the whole report; the
    # findings add the pretraining-interaction tests to that family and re-adjust it.
    compare([r for r in rows if r.block == MULTI], [r for r in rows if r.block == SINGLE], alpha)
    findings = analyse(rows, alpha)
    stage_data = {
        r.pretrain: tuple(sorted({d for ds in r.datasets.values() for d in ds}))
        for r in rows
        if r.block == PRETRAINING
    }
    order = Order.of(rows)
    tables = main_tables(rows, group, stage_data, order)
    # The findings name their cells as the tables do: with the variant the layout gave them.
    variants = {r.ident: r.variant for t in tables for r in t.rows if r.block == MULTI}
    for row in rows:
        if row.block == MULTI:
            row.variant = variants.get(row.ident, row.variant)
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
        tests=findings.tests,
        findings=findings,
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
                ident=tuple(first[k] for k in ROW_KEYS),
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
