"""Trade-off fronts on planted runs logged through the run contract into a real sqlite store."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import scipy.stats

from mtl_sweep.report import build_report
from mtl_sweep.report.fronts import hypervolume, normalise
from mtl_sweep.report.model.fronts import BEYOND, DOMINATED, FIXED, FRONT, Front

from .test_report import Study, empty_store, uri  # noqa: F401  (fixtures)


@pytest.fixture
def store(uri: str) -> str:  # noqa: F811  (test_report's fixture: an empty sqlite store)
    return uri


SEEDS = range(5)
TRIVIAL = {"trivial/test/age_mae": 10.0, "trivial/test/gender_acc": 0.5}
# Fixed weightings (age, gender) -> mean (age MAE in years, gender accuracy): A, B and C
# trace the front; D is dominated by B.
FIXED_POINTS = {
    (1.8, 0.2): (4.0, 0.70),
    (1.0, 1.0): (5.0, 0.80),
    (0.2, 1.8): (6.0, 0.90),
    (1.5, 0.5): (5.5, 0.72),
}
B = (1.0, 1.0)


def noise(seed: int, scale: float, salt: int) -> float:
    return float(np.random.default_rng(1000 * salt + seed).normal(0, scale))


def fixed_values(weights, seed: int) -> dict[str, float]:
    age, gender = FIXED_POINTS[weights]
    salt = int(weights[0] * 10)
    return {"age": age + noise(seed, 0.1, salt), "gender": gender + noise(seed, 0.01, salt + 1)}


def planted(study: Study, *, trivial: bool = True, backbone: str = "resnet18") -> dict:
    """The planted sweep; returns strategy -> seed -> values, for the scipy check."""
    extra = TRIVIAL if trivial else {}
    for weights in FIXED_POINTS:
        for seed in SEEDS:
            results = {**fixed_values(weights, seed), **extra}
            study.trial(("age", "gender"), results, seed=seed, weights=weights, backbone=backbone)
    strategies: dict[str, dict[int, dict[str, float]]] = {}
    for seed in SEEDS:
        b = fixed_values(B, seed)
        strategies.setdefault("uncertainty", {})[seed] = {  # worse than B on both, each seed
            "age": b["age"] + 0.5 + abs(noise(seed, 0.1, 7)),
            "gender": b["gender"] - 0.05 - abs(noise(seed, 0.01, 8)),
        }
        strategies.setdefault("dwa", {})[seed] = {  # beyond: better than B on both
            "age": 4.5 + noise(seed, 0.1, 9),
            "gender": 0.85 + noise(seed, 0.01, 10),
        }
        strategies.setdefault("gradnorm", {})[seed] = {  # on the front (dominates only D)
            "age": 4.2 + noise(seed, 0.1, 11),
            "gender": 0.76 + noise(seed, 0.01, 12),
        }
    for name, per_seed in strategies.items():
        for seed, results in per_seed.items():
            study.trial(
                ("age", "gender"),
                {**results, **extra},
                seed=seed,
                weighting=name,
                backbone=backbone,
            )
    for seed in SEEDS:
        study.trial(
            "age", {"age": 5.2 + noise(seed, 0.1, 13), **extra}, seed=seed, backbone=backbone
        )
        study.trial(
            "gender",
            {"gender": 0.82 + noise(seed, 0.01, 14), **extra},
            seed=seed,
            backbone=backbone,
        )
    return strategies


def fronts_of(store_uri: str) -> list[Front]:
    return build_report(store_uri).fronts


def holm(p: Sequence[float]) -> list[float]:
    """Holm-Bonferroni, written out: p_(k) * (m - k + 1), made monotone, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_planted_verdicts_dominated_by_and_p_values_match_scipy(store):
    strategies = planted(Study(store))
    (front,) = fronts_of(store)
    assert front.pair == ("age", "gender")
    assert front.seeds == tuple(SEEDS)
    assert {p.weights for p in front.front} == {(1.8, 0.2), (1.0, 1.0), (0.2, 1.8)}
    assert not front.notes
    verdicts = {v.point.name: v for v in front.strategies}
    assert {n: v.verdict for n, v in verdicts.items()} == {
        "uncertainty": DOMINATED,
        "dwa": BEYOND,
        "gradnorm": FRONT,
    }
    assert verdicts["uncertainty"].dominated_by == B
    assert verdicts["dwa"].dominated_by is None and verdicts["dwa"].dominates == B
    assert verdicts["gradnorm"].versus is None and not verdicts["gradnorm"].tests

    # scipy: paired t-tests of B against uncertainty and of dwa against B, oriented so
    # that + favours the dominating side; Holm over the four.
    b = {s: fixed_values(B, s) for s in SEEDS}
    sign = {"age": -1, "gender": 1}
    raw, diffs = [], []
    for better, worse in ((b, strategies["uncertainty"]), (strategies["dwa"], b)):
        for task in ("age", "gender"):
            x = [sign[task] * better[s][task] for s in SEEDS]
            y = [sign[task] * worse[s][task] for s in SEEDS]
            raw.append(scipy.stats.ttest_rel(x, y).pvalue)
            diffs.append(float(np.mean(np.subtract(x, y))))
    got = [
        verdicts[name].tests[task] for name in ("uncertainty", "dwa") for task in ("age", "gender")
    ]
    assert [t.p_value for t in got] == pytest.approx(raw, rel=1e-9)
    assert [t.p_adjusted for t in got] == pytest.approx(holm(raw), rel=1e-9)
    assert [t.diff_mean for t in got] == pytest.approx(diffs, rel=1e-9)
    assert all(d > 0 for d in diffs)  # the planted gaps hold in every seed
    assert all(t.significant for t in got)


def test_planted_means_intervals_and_hypervolume(store):
    strategies = planted(Study(store))
    (front,) = fronts_of(store)
    point = next(p for p in front.points if p.weights == B)
    ages = [fixed_values(B, s)["age"] for s in SEEDS]
    half = scipy.stats.t.ppf(0.975, len(ages) - 1) * np.std(ages, ddof=1) / math.sqrt(len(ages))
    assert point.axes[0].mean == pytest.approx(np.mean(ages))
    assert (point.axes[0].low, point.axes[0].high) == pytest.approx(
        (np.mean(ages) - half, np.mean(ages) + half)
    )

    def norm(age: float, gender: float) -> tuple[float, float]:
        return (1 - age / 10.0, (gender - 0.5) / 0.5)

    ref = norm(front.singles["age"].axes[0].mean, front.singles["gender"].axes[1].mean)
    fixed = [norm(*p.means) for p in front.front]
    assert front.hypervolume[FIXED] == pytest.approx(direct_hypervolume(fixed, ref))
    dwa = strategies["dwa"]
    dwa_point = norm(
        np.mean([v["age"] for v in dwa.values()]), np.mean([v["gender"] for v in dwa.values()])
    )
    assert front.hypervolume["dwa"] == pytest.approx(
        (dwa_point[0] - ref[0]) * (dwa_point[1] - ref[1])
    )
    assert front.hypervolume["uncertainty"] == 0.0  # worse than single-task on age


def test_without_trivial_metrics_there_are_verdicts_but_no_hypervolume(store):
    planted(Study(store), trivial=False)
    (front,) = fronts_of(store)
    verdicts = {v.point.name: v.verdict for v in front.strategies}
    assert verdicts == {"uncertainty": DOMINATED, "dwa": BEYOND, "gradnorm": FRONT}
    assert front.hypervolume == {}
    assert any("no hypervolume" in n and "trivial" in n for n in front.notes)


def test_fronts_per_backbone_and_search_runs_are_never_counted(store):
    study = Study(store)
    planted(study, backbone="resnet18")
    planted(study, backbone="alexnet")
    # A search run of a tuned cell: far beyond everything, and never a point.
    study.trial(
        ("age", "gender"), {"age": 0.1, "gender": 0.99}, seed=0, weighting="dwa", kind="search"
    )
    fronts = fronts_of(store)
    assert sorted(f.backbone for f in fronts) == ["alexnet", "resnet18"]
    for f in fronts:
        assert {v.point.name: v.verdict for v in f.strategies}["dwa"] == BEYOND
        assert all(p.axes[0].n == len(SEEDS) for p in [*f.points, *(v.point for v in f.strategies)])


def test_fewer_than_three_weightings_give_no_front_with_a_note(store):
    study = Study(store)
    for weights in [(1.8, 0.2), (1.0, 1.0)]:
        for seed in SEEDS:
            study.trial(("age", "gender"), fixed_values(weights, seed), seed=seed, weights=weights)
    study.seeds(("age", "gender"), [{"age": 4.0, "gender": 0.9}] * 3, weighting="dwa")
    (front,) = fronts_of(store)
    assert not front.drawn and not front.strategies
    assert front.unjudged == ("dwa",)
    assert front.notes[0] == "no front: 2 fixed weighting(s), a front needs 3"


def test_unpaired_seeds_give_no_front_with_a_note(store):
    study = Study(store)
    for i, weights in enumerate([(1.8, 0.2), (1.0, 1.0), (0.2, 1.8)]):
        study.trial(("age", "gender"), fixed_values(weights, i), seed=i, weights=weights)
    (front,) = fronts_of(store)
    assert not front.drawn
    assert front.notes == [
        "no front: unpaired seeds, the fixed weightings share no seed "
        "(1.8, 0.2: 0; 1, 1: 1; 0.2, 1.8: 2)"
    ]


def test_a_seed_not_every_weighting_finished_is_left_out(store):
    study = Study(store)
    for weights in [(1.8, 0.2), (1.0, 1.0), (0.2, 1.8)]:
        for seed in (0, 1, 2):
            study.trial(("age", "gender"), fixed_values(weights, seed), seed=seed, weights=weights)
    study.trial(("age", "gender"), fixed_values(B, 3), seed=3, weights=B)
    (front,) = fronts_of(store)
    assert front.drawn and front.seeds == (0, 1, 2)
    assert "seed(s) 3 left out" in front.notes[0]
    assert all(p.axes[0].n == 3 for p in front.points)


def test_a_set_with_one_weighting_and_no_strategy_gets_no_entry(store):
    study = Study(store)
    study.seeds(("age", "gender"), [{"age": 4.0, "gender": 0.9}] * 3)
    assert fronts_of(store) == []


def direct_hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """2-D hypervolume (maximising) by sweeping the points in x, descending."""
    pts = sorted((p for p in points if p[0] > ref[0] and p[1] > ref[1]), reverse=True)
    area, top = 0.0, ref[1]
    for x, y in pts:
        if y > top:
            area += (x - ref[0]) * (y - top)
            top = y
    return area


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_a_direct_computation_on_random_points(seed):
    rng = np.random.default_rng(seed)
    points = [tuple(p) for p in rng.uniform(-0.2, 1.0, size=(int(rng.integers(1, 30)), 2))]
    ref = tuple(rng.uniform(-0.3, 0.3, size=2))
    assert hypervolume(points, ref) == pytest.approx(direct_hypervolume(points, ref))


def test_hypervolume_in_three_dimensions_matches_inclusion_exclusion():
    a, b = (0.5, 0.2, 0.9), (0.3, 0.6, 0.4)
    inter = (0.3, 0.2, 0.4)
    vol = math.prod(a) + math.prod(b) - math.prod(inter)
    assert hypervolume([a, b], (0.0, 0.0, 0.0)) == pytest.approx(vol)


def test_normalise_is_the_relative_objective():
    assert normalise("age", 8.0, 10.0) == pytest.approx(0.2)
    assert normalise("gender", 0.8, 0.6) == pytest.approx(0.5)
    assert normalise("smile", 0.6, 0.6) == 0.0


def test_a_strategy_without_a_finished_seed_is_unjudged(store):
    study = Study(store)
    for weights in [(1.8, 0.2), (1.0, 1.0), (0.2, 1.8)]:
        for seed in (0, 1):
            study.trial(("age", "gender"), fixed_values(weights, seed), seed=seed, weights=weights)
    study.trial(("age", "gender"), {}, seed=0, weighting="gradnorm", status="FAILED")
    (front,) = fronts_of(store)
    assert front.drawn and not front.strategies
    assert front.unjudged == ("gradnorm",)
    assert "gradnorm: no seed finished on both tasks, so no verdict" in front.notes
