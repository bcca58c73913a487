"""Task groupings in `mtl-sweep report`: hand-made cells logged through the MLflow contract,
where the best selection for each k is known by construction."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

import mtl_sweep.report.groupings as G
from mtl_core import contract as C
from mtl_sweep.report import build_report, render_report
from mtl_sweep.report.model.base import Grouping

from .test_report import Study, empty_store, md_table, report_cli, uri  # noqa: F401

# Single-task results: age MAE 10 years, gender 80%, emotion 50%, smile 80%.
SINGLE = {"age": 10.0, "gender": 0.80, "emotion": 0.50, "smile": 0.80}
# Trained networks and their per-task gain over single-task (%), 100 s_t (M_t - S_t) / S_t.
GAINS: dict[tuple[str, ...], dict[str, float]] = {
    ("age", "gender", "emotion", "smile"): {"age": -5, "gender": 0, "emotion": 0, "smile": 0},
    ("age", "gender"): {"age": 10, "gender": 5},
    ("age", "emotion"): {"age": 6, "emotion": 20},
    ("age", "smile"): {"age": 1, "smile": -1},
    ("gender", "emotion"): {"gender": 2.5, "emotion": 18},
    ("gender", "smile"): {"gender": -0.5, "smile": 0.5},
    ("emotion", "smile"): {"emotion": 11, "smile": 4},
}
FOUR = ("age", "gender", "emotion", "smile")


def metric(task: str, gain: float) -> float:
    """The stored metric that gives `gain` (%) over the single-task result."""
    sign = -1.0 if task == "age" else 1.0  # lower MAE is better
    return SINGLE[task] * (1 + sign * gain / 100)


def log_study(study: Study, affinity: bool = True, wobble: float = 0.0) -> None:
    """Singles, the six pairs and all four, two seeds each. `wobble` moves age+gender's
    gender gain by -/+ that many percent on seeds 0/1 (the seed means stay the same). The
    all-task runs log affinities equal to the pair gains / 1000 (all distinct), so TAG's
    scores mirror Standley's pair estimates and the rank correlation is exactly 1."""
    for task, value in SINGLE.items():
        study.seeds((task,), [{task: value}] * 2)
    for tasks, gains in GAINS.items():
        per_seed = []
        for seed in (0, 1):
            results = {t: metric(t, g) for t, g in gains.items()}
            if tasks == ("age", "gender"):
                results["gender"] = metric("gender", gains["gender"] + wobble * (2 * seed - 1))
            if affinity and tasks == FOUR:
                for pair, g in GAINS.items():
                    if len(pair) == 2:
                        i, j = pair
                        results[f"affinity_mean/{i}_to_{j}"] = g[j] / 1000
                        results[f"affinity_mean/{j}_to_{i}"] = g[i] / 1000
            per_seed.append(results)
        study.seeds(tasks, per_seed)


def only(report) -> Grouping:
    (g,) = report.groupings
    return g


def by_k(selections) -> dict[int, object]:
    return {s.k: s for s in selections}


def test_best_selection_per_k_is_known_by_construction(uri):  # noqa: F811
    log_study(Study(uri), wobble=2.5)
    g = only(build_report(uri))
    assert g.tasks == FOUR
    measured = by_k(g.measured)
    # k = 1: the only network that trains every task.
    assert measured[1].networks == (FOUR,)
    assert measured[1].score.mean == pytest.approx(-1.25)
    assert measured[1].vs_all == pytest.approx(0.0)
    # k = 2: age+gender and emotion+smile: (10 + 5 + 11 + 4) / 4.
    assert measured[2].networks == (("age", "gender"), ("emotion", "smile"))
    assert measured[2].score.mean == pytest.approx(7.5)
    assert measured[2].vs_all == pytest.approx(7.5 + 1.25)
    # k = 3: each task at its best pair: age 10 (age+gender), gender 5, emotion 20
    # (age+emotion), smile 4 (emotion+smile).
    assert set(measured[3].networks) == {
        ("age", "gender"),
        ("age", "emotion"),
        ("emotion", "smile"),
    }
    assert measured[3].score.mean == pytest.approx(9.75)
    served = {s.task: s.network for s in measured[3].served}
    assert served == {
        "age": ("age", "gender"),
        "gender": ("age", "gender"),
        "emotion": ("age", "emotion"),
        "smile": ("emotion", "smile"),
    }
    emotion = next(s for s in measured[3].served if s.task == "emotion")
    assert emotion.metric == pytest.approx(0.60)  # the served network's own test metric
    assert measured[4].score.mean == pytest.approx(9.75)  # a fourth network cannot help
    assert not any(s.estimated for s in g.measured)
    # Seed spread: the wobble moves the k = 2 score by -/+ 2.5 / 4 on seeds 0 / 1.
    assert measured[2].score.n == 2
    assert measured[2].score.std == pytest.approx(2 * 0.625 / 2**0.5)
    assert measured[1].score.std == pytest.approx(0.0)


def test_an_estimated_subset_that_would_win_is_marked_estimated(uri):  # noqa: F811
    log_study(Study(uri))
    g = only(build_report(uri))
    # Age+gender+emotion was never trained. From its pairs: age (10 + 6) / 2, gender
    # (5 + 2.5) / 2, emotion (20 + 18) / 2; with emotion+smile for smile (4) that beats
    # the best measured pair of networks (7.5).
    (est,) = g.estimated
    assert est.k == 2 and est.estimated
    assert est.networks == (("age", "gender", "emotion"), ("emotion", "smile"))
    assert est.bases == (G.ESTIMATED, G.MEASURED)
    assert est.score.mean == pytest.approx((8 + 3.75 + 19 + 4) / 4)
    age = next(s for s in est.served if s.task == "age")
    assert age.basis == G.ESTIMATED and age.metric == pytest.approx(metric("age", 8))
    text = render_report(uri, fmt="markdown")
    rows = md_table(text, "Task groupings: ResNet-18, no pretraining")
    estimated = [r for r in rows if r["basis"] == "estimated"]
    assert [r["k"] for r in estimated] == ["2"]
    assert estimated[0]["networks"] == "age+gender+emotion (estimated), emotion+smile"
    assert estimated[0]["Age MAE (served by)"].startswith("≈")
    assert all("estimated" not in r["networks"] for r in rows if r["basis"] == "measured")


def test_affinity_groupings_and_their_rank_correlation_with_pair_gains(uri):  # noqa: F811
    log_study(Study(uri))
    g = only(build_report(uri))
    assert g.affinity[("emotion", "smile")].mean == pytest.approx(0.004)
    assert g.affinity[("emotion", "smile")].n == 2
    rho, _p, n = g.spearman
    assert rho == pytest.approx(1.0) and n == 12
    tag = {c.k: c for c in g.by_affinity}
    assert tag[2].networks == (("age", "gender", "emotion"), ("emotion", "smile"))
    assert tag[2].measured.estimated  # its triple was never trained
    assert tag[3].measured.score.mean == pytest.approx(9.75)
    assert not tag[3].measured.estimated


def test_the_section_is_on_only_where_subsets_other_than_singles_and_all_were_run(
    uri,  # noqa: F811
    report_cli,  # noqa: F811
):
    study = Study(uri)
    for task, value in SINGLE.items():
        study.trial((task,), {task: value})
    study.trial(FOUR, {t: metric(t, 1.0) for t in FOUR})
    assert build_report(uri).groupings == []
    forced = only(build_report(uri, groupings=True))
    assert by_k(forced.measured)[1].score.mean == pytest.approx(1.0)
    assert by_k(forced.measured)[4].networks == (FOUR,)  # singles score 0 < 1
    out = report_cli("--tracking-uri", uri, "--groupings")
    assert out.code == 0 and "## Task groupings" in out.out
    study.trial(("age", "gender"), {"age": metric("age", 3), "gender": metric("gender", 1)})
    assert len(build_report(uri).groupings) == 1
    out = report_cli("--tracking-uri", uri, "--no-groupings")
    assert out.code == 0 and "Task groupings" not in out.out


def test_every_format_carries_the_groupings(uri, tmp_path, report_cli):  # noqa: F811
    log_study(Study(uri))
    doc = json.loads(render_report(uri, fmt="json"))
    (g,) = doc["groupings"]
    k2 = next(s for s in g["estimated"] if s["k"] == 2)
    assert k2["estimated"] and k2["networks"][0] == {
        "tasks": ["age", "gender", "emotion"],
        "basis": "estimated",
    }
    assert g["spearman"]["n"] == 12
    frame = pd.read_csv(io.StringIO(render_report(uri, fmt="csv")))
    blocks = set(frame["block"])
    assert {"grouping (measured)", "grouping (estimated)", "affinity"} <= blocks
    est = frame[frame["block"] == "grouping (estimated)"]
    assert est["model"].tolist() == ["age+gender+emotion (estimated), emotion+smile"]
    latex = render_report(uri, fmt="latex")
    assert r"Task groupings: ResNet-18, no pretraining" in latex
    assert r"\toprule" in latex and "≈" not in latex and "→" not in latex
    html = render_report(uri, fmt="html")
    assert "<h2>Task groupings from affinity: ResNet-18, no pretraining</h2>" in html
    plot = tmp_path / "gains.png"
    out = report_cli("--tracking-uri", uri, "--plot", str(plot))
    assert out.code == 0, out.err
    assert (tmp_path / "gains-affinity.png").stat().st_size > 0


def test_exhaustive_search_matches_brute_force_over_every_selection():
    """best_selections via set partitions against trying every set of at most k networks."""
    import itertools
    import random

    rng = random.Random(0)
    tasks = ["a", "b", "c", "d", "e"]
    scores = {
        s: {t: rng.uniform(-5, 5) for t in s}
        for n in (2, 3, 5)
        for s in itertools.combinations(tasks, n)
    }
    candidates = G.measured_candidates(tasks, scores, estimate=False)
    for choice in G.best_selections(tasks, candidates):
        best = -float("inf")
        for size in range(1, choice.k + 1):
            for nets in itertools.combinations(candidates, size):
                served = G.serve(tasks, nets)
                if len(served) == len(tasks):
                    best = max(best, sum(served[t].scores[t] for t in tasks) / len(tasks))
        assert choice.score == pytest.approx(best)
    assert sum(1 for _ in G.set_partitions(list("abcdef"))) == 203  # Bell(6)


def test_the_groupings_sweep_has_singles_pairs_triples_and_all_with_affinity_on():
    from mtl_sweep.expand import expand
    from mtl_sweep.spec.load import load_spec

    from .conftest import SWEEPS

    spec = load_spec(SWEEPS / "groupings.yaml")
    plan = expand(spec)
    sizes = sorted(len(t.config.tasks) for t in plan.trials)
    assert sizes == [1] * 4 + [2] * 6 + [3] * 4 + [4]
    assert {t.config.sources[t.config.tasks[0]].kind for t in plan.trials} == {"synthetic"}
    assert spec.train.affinity.every is not None


def test_without_an_all_task_run_k1_is_estimated_and_vs_all_says_so(uri):  # noqa: F811
    study = Study(uri)
    for task, value in SINGLE.items():
        study.trial((task,), {task: value})
    for tasks, gains in GAINS.items():
        if len(tasks) == 2:
            study.trial(tasks, {t: metric(t, g) for t, g in gains.items()})
    g = only(build_report(uri))
    assert 1 not in by_k(g.measured)  # no trained network serves every task
    k1 = by_k(g.estimated)[1]
    assert k1.networks == (FOUR,) and k1.bases == (G.ESTIMATED,)
    assert g.all_task is not None and g.all_task.estimated
    assert any("pair estimate" in n for n in g.notes)


def _four_task_runs(study: Study) -> dict[int, str]:
    """Seed -> run id of the all-task network's runs."""
    runs = study.client.search_runs([study.exp_id], f"tags.`{C.TASKS}` = '{'+'.join(FOUR)}'")
    return {int(r.data.tags[C.SEED]): r.info.run_id for r in runs}


def test_affinities_of_another_lookahead_scope_are_not_averaged_together(uri):  # noqa: F811
    study = Study(uri)
    log_study(study)
    seeds = _four_task_runs(study)
    study.client.log_param(seeds[1], "run.affinity_params", "last_shared")
    g = only(build_report(uri))
    assert g.affinity_params == "trunk"  # a tie goes to TAG's own Z
    assert g.affinity[("emotion", "smile")].n == 1
    assert any("1 seed(s) measured with another train.affinity.params" in n for n in g.notes)

    study.client.log_param(seeds[0], "run.affinity_params", "last_shared")
    g = only(build_report(uri))
    assert g.affinity_params == "last_shared" and g.affinity[("emotion", "smile")].n == 2
    text = render_report(uri, fmt="markdown")
    assert "a proxy for TAG's Z" in text
    frame = pd.read_csv(io.StringIO(render_report(uri, fmt="csv")))
    assert set(frame.loc[frame["block"] == "affinity", "affinity params"]) == {"last_shared"}
    (doc,) = json.loads(render_report(uri, fmt="json"))["groupings"]
    assert doc["affinity_params"] == "last_shared"
