"""Trade-off fronts: each task pair's fixed-weight front, and the adaptive strategies on it.

Xin et al. (NeurIPS 2022): an adaptive loss weighting only helps if it reaches a point that
no fixed weighting reaches. Pure functions over the report's rows (no MLflow, no format).

Rules, in order:
1. A *set* is the multi-task rows of one backbone, pretraining and task set whose fixed
   weightings share their settings (params); its adaptive rows (uncertainty, dwa, ...)
   are those whose settings agree with them. A set with fewer than two fixed weightings
   and no adaptive row has nothing to trace and gets no entry.
2. For every pair of tasks (i, j) in the set, each fixed weighting is a point: its mean
   test metric per task over the seeds every fixed weighting finished, with a Student-t
   (1 - alpha) interval per axis. No front with fewer than 3 weightings, or where they
   share no seed (a note says why).
3. The front is the non-dominated points (moocore.is_nondominated), metrics oriented so
   that higher is better (-MAE, accuracy). Duplicated points are all kept on it.
4. Each adaptive strategy's mean point gets a verdict: *dominated* when some fixed
   weighting is at least as good on both tasks and better on one; else *beyond* when it
   dominates a point of the front; else *front*. Behind a verdict: paired per-seed tests
   (stats.paired) against one weighting, the best dominating one (dominated) or the best
   dominated front point (beyond): the one with the smallest larger p-value of the two
   tasks. Differences are signed so that + favours the dominating side. Holm's
   correction runs over every verdict test of the section (`build_fronts`).
5. Hypervolume (moocore.hypervolume, exact in 2-D) of the front's points and of each
   strategy's point, against the single-task point (task i alone, task j alone), on the
   metrics normalised to the trivial predictor (`normalise`). Without the trivial values
   (runs logged before them) or a single-task point there is none, and a note says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.compare import baselines, configs_agree
from mtl_sweep.report.model.base import DEFAULT_ALPHA, MULTI, SINGLE, Paired, Row
from mtl_sweep.report.model.fronts import (
    BEYOND,
    DOMINATED,
    FIXED,
    FRONT,
    Front,
    FrontVerdict,
    Point,
)
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.query import config_signature
from mtl_sweep.report.stats import holm_adjust, mean_ci, paired

MIN_WEIGHTINGS = 3  # fixed weightings a front needs
# The trivial predictor's test metrics each trial logs, e.g. trivial/test/age_mae.
TRIVIAL_TEST = f"{C.TRIVIAL}test/"

Pair = tuple[str, str]  # (task i, task j) on a front's axes


def build_fronts(
    rows: Sequence[Row], trivial: Mapping[str, float], alpha: float = DEFAULT_ALPHA
) -> list[Front]:
    """Every task pair's front in every multi-task set of `rows` (module docstring).

    `trivial` maps a data signature and metric (`trivial_key`) to the trivial
    predictor's test value (`trivial_values`). Holm's correction runs over the verdict
    tests of all the fronts returned.
    """
    singles = [r for r in rows if r.block == SINGLE]
    fronts = []
    for fixed, adaptive in _sets(rows):
        for pair in combinations((fixed or adaptive)[0].tasks, 2):
            fronts.append(_front(pair, fixed, adaptive, singles, trivial, alpha))
    return _holm(fronts, alpha)


def _sets(rows: Sequence[Row]) -> list[tuple[list[Row], list[Row]]]:
    """(fixed rows, adaptive rows) per multi-task set (rule 1)."""
    by_cell: dict[tuple[str, str, tuple[str, ...]], list[Row]] = {}
    for row in rows:
        if row.block == MULTI:
            by_cell.setdefault((row.backbone, row.pretrain, row.tasks), []).append(row)
    out = []
    for cell_rows in by_cell.values():
        fixed: dict[str, list[Row]] = {}
        for row in cell_rows:
            if row.weighting == "fixed" and row.weights is not None:
                fixed.setdefault(config_signature(row.config), []).append(row)
        adaptive = [r for r in cell_rows if r.weighting != "fixed"]
        placed: set[int] = set()
        for group in fixed.values():
            mine = [r for r in adaptive if configs_agree(r.config, group[0].config)]
            placed |= {id(r) for r in mine}
            if len(group) >= 2 or mine:
                out.append((group, mine))
        alone = [r for r in adaptive if id(r) not in placed]
        if alone:  # no fixed weighting of their settings: listed as unjudged
            out.append(([], alone))
    return out


def _strategy_name(row: Row) -> str:
    """The strategy, with the params that tell it from another row of it (Row.variant)."""
    return f"{row.weighting} ({row.variant})" if row.variant else row.weighting


def _front(
    pair: Pair,
    fixed: list[Row],
    adaptive: list[Row],
    singles: list[Row],
    trivial: Mapping[str, float],
    alpha: float,
) -> Front:
    first = (fixed or adaptive)[0]
    keys = tuple(_metric_key(t) for t in pair)
    notes: list[str] = []
    seeds, why = _shared_seeds(fixed, keys)
    if why:
        notes.append(why)
    points = [_point(_weights_name(r), r.weights, r, keys, seeds, alpha) for r in fixed]
    refs = baselines(first, singles)[0]
    single_points = {
        t: _point("single-task", None, refs[t], (key, key), None, alpha)
        for t, key in zip(pair, keys, strict=True)
        if t in refs and refs[t].values.get(key)  # a single-task row with a finished seed
    }
    front = Front(
        first.backbone,
        first.pretrain,
        first.tasks,
        pair,
        variant=first.variant,
        seeds=seeds,
        points=points,
        singles=single_points,
        unjudged=tuple(_strategy_name(r) for r in adaptive),
        notes=notes,
    )
    if len(fixed) < MIN_WEIGHTINGS:
        notes.insert(
            0, f"no front: {len(fixed)} fixed weighting(s), a front needs {MIN_WEIGHTINGS}"
        )
        return front
    if not seeds:
        return front
    on_front = _non_dominated([_oriented(p.means, pair) for p in points])
    front = replace(front, on_front=on_front)
    judged = [_point(_strategy_name(r), None, r, keys, None, alpha) for r in adaptive]
    unjudged = tuple(p.name for p in judged if not p.axes[0].n)
    if unjudged:
        notes.append(f"{', '.join(unjudged)}: no seed finished on both tasks, so no verdict")
    verdicts = [_verdict(p, front, alpha) for p in judged if p.axes[0].n]
    hv, why = _hypervolumes(front, verdicts, fixed[0], trivial)
    if why:
        notes.append(why)
    return replace(front, strategies=verdicts, unjudged=unjudged, hypervolume=hv)


def _metric_key(task: str) -> str:
    return C.TEST + PRIMARY_METRIC[task].name


def _weights_name(row: Row) -> str:
    """The weights to 3 significant digits (`1.82, 0.182`): a lattice's ratios stay
    readable; JSON keeps them exact."""
    return ", ".join(f"{w:.3g}" for w in row.weights or ())


def _shared_seeds(fixed: list[Row], keys: tuple[str, str]) -> tuple[tuple[int, ...], str]:
    """The seeds every fixed weighting finished on both tasks, and a note when some are
    left out or none is shared ("" when every weighting has the same seeds)."""
    per_row = [_seeds(r, keys) for r in fixed]
    if not per_row:
        return (), ""
    shared = set.intersection(*per_row)
    union = set.union(*per_row)
    if not shared:
        each = "; ".join(
            f"{_weights_name(r)}: {_seed_text(s)}" for r, s in zip(fixed, per_row, strict=True)
        )
        return (), f"no front: unpaired seeds, the fixed weightings share no seed ({each})"
    if shared != union:
        return tuple(sorted(shared)), (
            f"seed(s) {_seed_text(union - shared)} left out: not finished by every fixed weighting"
        )
    return tuple(sorted(shared)), ""


def _seeds(row: Row, keys: Iterable[str]) -> set[int]:
    return set.intersection(*(set(row.values.get(k, {})) for k in keys))


def _seed_text(seeds: Iterable[int]) -> str:
    return ", ".join(map(str, sorted(seeds))) or "none"


def _point(
    name: str,
    weights: tuple[float, ...] | None,
    row: Row,
    keys: tuple[str, str],
    seeds: tuple[int, ...] | None,
    alpha: float,
) -> Point:
    """The row's point on `keys` over `seeds` (None: every seed it finished both on)."""
    use = set(seeds) if seeds is not None else _seeds(row, keys)
    values = tuple({s: v for s, v in row.values.get(k, {}).items() if s in use} for k in keys)
    axes = tuple(mean_ci(v.values(), 1 - alpha) for v in values)
    return Point(name, weights, (axes[0], axes[1]), (values[0], values[1]))


def _oriented(means: tuple[float, float], pair: Pair) -> tuple[float, float]:
    """Means with higher-is-better on both axes (-MAE)."""
    return (PRIMARY_METRIC[pair[0]].sign * means[0], PRIMARY_METRIC[pair[1]].sign * means[1])


def _non_dominated(points: list[tuple[float, float]]) -> list[bool]:
    """Per point: not dominated by another (moocore; duplicates all kept)."""
    import moocore

    flags = moocore.is_nondominated(
        np.asarray(points, dtype=float), maximise=True, keep_weakly=True
    )
    return [bool(f) for f in flags]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Pareto dominance of oriented points: a >= b everywhere and > somewhere."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def _verdict(point: Point, front: Front, alpha: float) -> FrontVerdict:
    """Rule 4: the strategy's verdict and the tests behind it."""
    pair = front.pair
    mine = _oriented(point.means, pair)
    over = [p for p in front.points if dominates(_oriented(p.means, pair), mine)]
    if over:
        best, tests = _strongest([(p, _tests(p, point, pair, alpha)) for p in over])
        return FrontVerdict(point, DOMINATED, best, tests)
    under = [p for p in front.front if dominates(mine, _oriented(p.means, pair))]
    if under:
        best, tests = _strongest([(p, _tests(point, p, pair, alpha)) for p in under])
        return FrontVerdict(point, BEYOND, best, tests)
    return FrontVerdict(point, FRONT)


def _tests(better: Point, worse: Point, pair: Pair, alpha: float) -> dict[str, Paired]:
    """Per task: the paired test of `better` against `worse` (+ favours `better`)."""
    out = {}
    for i, task in enumerate(pair):
        test = paired(better.values[i], worse.values[i], PRIMARY_METRIC[task].sign, alpha)
        if test is not None:
            out[task] = test
    return out


def _strongest(
    candidates: list[tuple[Point, dict[str, Paired]]],
) -> tuple[Point, dict[str, Paired]]:
    """The candidate whose larger per-task p-value is smallest (the strongest evidence on
    both tasks at once); ties (and untested pairs) go to the larger worst gain."""

    def key(item: tuple[Point, dict[str, Paired]]) -> tuple[float, float]:
        tests = item[1].values()
        worst_p = max((t.p_value if t.tested else math.inf for t in tests), default=math.inf)
        worst_gain = min((t.diff_mean for t in tests), default=-math.inf)
        return (worst_p, -worst_gain)

    return min(candidates, key=key)


def normalise(task: str, value: float, trivial: float) -> float:
    """A test metric as its improvement over the trivial predictor, higher is better:

        age MAE:     1 - MAE / MAE_trivial
        accuracies:  (acc - acc_trivial) / (1 - acc_trivial)

    0 is the trivial predictor, 1 a perfect one, negative worse than trivial (the tuning
    objective's `relative` terms). E.g. MAE 8 against a trivial 10 gives 0.2.
    """
    if PRIMARY_METRIC[task].higher_is_better:
        return (value - trivial) / (1.0 - trivial)
    return 1.0 - value / trivial


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Area (volume) dominated by `points` and dominating `reference`, higher is better
    on every axis (moocore.hypervolume; exact). Points not beyond the reference add 0."""
    import moocore

    if not len(points):
        return 0.0
    return float(moocore.hypervolume(np.asarray(points, dtype=float), ref=reference, maximise=True))


def _hypervolumes(
    front: Front, verdicts: list[FrontVerdict], row: Row, trivial: Mapping[str, float]
) -> tuple[dict[str, float], str]:
    """Rule 5: the front's and each strategy's hypervolume, or a note why there is none."""
    pair = front.pair
    missing = [t for t in pair if t not in front.singles]
    if missing:
        return (
            {},
            f"no hypervolume: no single-task {' or '.join(missing)} row with the same settings",
        )
    base = [trivial.get(trivial_key(row.config, t)) for t in pair]
    if any(b is None for b in base):
        return {}, (
            "no hypervolume: the runs logged no trivial-predictor metrics "
            f"({TRIVIAL_TEST}<metric>; runs made before them)"
        )

    def norm(means: tuple[float, float]) -> tuple[float, float]:
        return (normalise(pair[0], means[0], base[0]), normalise(pair[1], means[1], base[1]))

    ref = (
        normalise(pair[0], front.singles[pair[0]].axes[0].mean, base[0]),
        normalise(pair[1], front.singles[pair[1]].axes[1].mean, base[1]),
    )
    out = {FIXED: hypervolume([norm(p.means) for p in front.front], ref)}
    for v in verdicts:
        out[v.point.name] = hypervolume([norm(v.point.means)], ref)
    return out, ""


def trivial_key(config: Mapping[str, str], task: str) -> str:
    """The key of a task's trivial value: its data params (the predictor sees only the
    data) and its metric."""
    data = {k: v for k, v in config.items() if k.startswith(f"data.{task}.")}
    return f"{_metric_key(task)}|{config_signature(data)}"


def trivial_values(runs: pd.DataFrame) -> dict[str, float]:
    """`trivial_key` -> the median trivial test value over the finished runs of a sweep
    (query.COLUMNS). Every run of one data source logs the same value."""
    found: dict[str, list[float]] = {}
    finished = runs[runs["status"].eq("FINISHED")]
    for config, metrics in zip(finished["config"], finished["trivial"], strict=True):
        for task, metric in PRIMARY_METRIC.items():
            value = metrics.get(TRIVIAL_TEST + metric.name)
            if value is not None and math.isfinite(value):
                found.setdefault(trivial_key(config, task), []).append(value)
    return {k: float(np.median(v)) for k, v in found.items()}


def _holm(fronts: list[Front], alpha: float) -> list[Front]:
    """Holm's correction over every verdict test of the fronts (the section's family)."""
    tests = [t for f in fronts for v in f.strategies for t in v.tests.values()]
    adjusted = iter(holm_adjust(tests, alpha))
    out = []
    for f in fronts:
        verdicts = [
            replace(v, tests={task: next(adjusted) for task in v.tests}) for v in f.strategies
        ]
        out.append(replace(f, strategies=verdicts))
    return out


def attach_fronts(report: Report, runs: pd.DataFrame) -> None:
    """Set `report.fronts`: every front of the report's rows, the trivial values read from
    the sweep's runs (query.COLUMNS)."""
    rows = list({id(r): r for t in report.tables for r in t.rows}.values())
    report.fronts = build_fronts(rows, trivial_values(runs), report.alpha)
