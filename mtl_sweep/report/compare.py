"""Multi-task rows against their single-task baselines: Δm, per-task gains, paired tests.

A multi-task row's baseline for task t is the one single-task t row with the same
backbone, pretraining and settings (the params both log agree). Rows are paired by seed:
a seed counts for a task only where both sides finished it, and for Δm only where the row
and every baseline finished it. Holm's correction runs over every paired test of the
report at once (`compare`), so a cell's adjusted p-value does not change with --group-by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.model.base import DEFAULT_ALPHA, Row
from mtl_sweep.report.stats import (
    holm_adjust,
    mean_ci,
    min_detectable_difference,
    paired_many,
)


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


def configs_agree(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two configs agree on every param both have."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def baselines(row: Row, singles: Sequence[Row]) -> tuple[dict[str, Row], str]:
    """The single-task row of each of `row`'s tasks, and why one is missing ("" if none)."""
    found: dict[str, Row] = {}
    why = ""
    for task in row.tasks:
        rows = [
            s
            for s in singles
            if s.tasks == (task,)
            and s.backbone == row.backbone
            and s.pretrain == row.pretrain
            and configs_agree(s.config, row.config)
        ]
        if len(rows) == 1:
            found[task] = rows[0]
        elif not why:
            what = "no" if not rows else "more than one"
            why = f"{what} single-task {task} row with the same settings"
    return found, why


def compare(rows: Sequence[Row], singles: Sequence[Row], alpha: float = DEFAULT_ALPHA) -> int:
    """Set each multi-task row's paired tests (`row.paired`), Δm and per-task gains, then
    Holm-adjust all the tests as one family; returns its size m.

    Each task with a baseline gets a paired test over the seeds both finished; all the
    cells go through scipy together (`paired_many`). Δm and the gains are computed seed by
    seed over the seeds a row shares with every baseline; each is reported as the mean over
    those seeds with its (1 - alpha) Student-t interval.
    """
    cells: list[tuple[Row, str]] = []
    values = []
    for row in rows:
        found, why = baselines(row, singles)
        for task, base in found.items():
            key = C.TEST + PRIMARY_METRIC[task].name
            cells.append((row, task))
            values.append((row.values.get(key, {}), base.values.get(key, {}), _sign(task)))
        if why:
            row.delta_note = why
        else:
            _attach_delta_m(row, found, alpha)
    for (row, task), test in zip(cells, paired_many(values, alpha), strict=True):
        if test is not None:
            row.paired[task] = test
    tested = [(row, task) for row, task in cells if task in row.paired]
    adjusted = holm_adjust([row.paired[task] for row, task in tested], alpha)
    for (row, task), test in zip(tested, adjusted, strict=True):
        row.paired[task] = test
    return sum(test.tested for test in adjusted)


def _sign(task: str) -> int:
    return PRIMARY_METRIC[task].sign


def _attach_delta_m(row: Row, found: Mapping[str, Row], alpha: float) -> None:
    """Δm and per-task gains over the seeds `row` shares with every baseline in `found`."""
    per_seed = seed_deltas(row, found)
    if not per_seed:
        row.delta_note = "no finished seed shared with every single-task row"
        return
    row.delta_m = mean_ci(per_seed.values(), 1 - alpha)
    for t in row.tasks:
        gains = [task_gain(t, _at(row, t, s), _at(found[t], t, s)) for s in per_seed]
        row.gains[t] = mean_ci(gains, 1 - alpha)


def _key(task: str) -> str:
    return C.TEST + PRIMARY_METRIC[task].name


def _at(row: Row, task: str, seed: int) -> float:
    return row.values[_key(task)][seed]


def seed_deltas(row: Row, found: Mapping[str, Row]) -> dict[int, float]:
    """Seed -> Δm (%) of `row` against its baselines `found` (task -> single-task row),
    over the seeds the row shares with every baseline, in seed order."""
    keys = {t: _key(t) for t in row.tasks}
    shared = set.intersection(
        *(set(row.values.get(keys[t], {})) & set(found[t].values.get(keys[t], {})) for t in keys)
    )
    return {
        s: delta_m({t: _at(row, t, s) for t in keys}, {t: _at(found[t], t, s) for t in keys})
        for s in sorted(shared)
    }


def seed_gains(row: Row, base: Row, task: str) -> dict[int, float]:
    """Seed -> signed gain s_t (M - S) of `row` over its single-task row `base` on `task`,
    in the metric's stored units, over the seeds both finished (what `paired` tests)."""
    mtl, stl = row.values.get(_key(task), {}), base.values.get(_key(task), {})
    return {s: _sign(task) * (mtl[s] - stl[s]) for s in sorted(set(mtl) & set(stl))}


def detectable(rows: Sequence[Row], alpha: float) -> dict[str, tuple[int, float]]:
    """Per task, (n, smallest gain a paired t-test at `alpha` detects with 80% power) over
    the tested cells of `rows`, in the metric's stored units.

    n is the smallest n among those cells (the weakest test) and the spread is pooled:
    sqrt of the mean of the cells' gain variances. See `stats.min_detectable_difference`.
    """
    out: dict[str, tuple[int, float]] = {}
    for task in sorted({t for r in rows for t in r.paired}, key=TASKS.index):
        tested = [r.paired[task] for r in rows if task in r.paired and r.paired[task].tested]
        if tested:
            n = min(t.n for t in tested)
            std = math.sqrt(sum(t.diff_std**2 for t in tested) / len(tested))
            out[task] = (n, min_detectable_difference(n, std, alpha))
    return out
