"""`grid.weights` lattices: counts per task-set size, zero-weight collapse, keys unchanged."""

from __future__ import annotations

from collections import Counter
from math import comb, isclose

import pytest

from mtl_core.tasks import SHORTHANDS
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec, parse_spec
from mtl_sweep.spec.weights import ratio_vectors, simplex_vectors

from .conftest import SWEEPS


def plan_of(text: str):
    return expand(parse_spec(text, "t.yaml", []), "t.yaml")


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_simplex_has_every_composition_once_scaled_to_k(k, n):
    tasks = ("age", "gender", "emotion", "smile")[:k]
    got = simplex_vectors(tasks, n)
    assert len(got) == comb(n + k - 1, k - 1)
    counts = {tuple(round(w * n / k) for w in v.values()) for v in got}
    assert len(counts) == len(got)  # distinct
    for v, c in zip(got, counts, strict=False):
        assert isclose(sum(v.values()), k)
        assert all(isclose(w * n / k, round(w * n / k)) for w in v.values()), c


def test_ratios_give_one_vector_per_ratio_on_a_pair_and_weight_one_alone():
    got = ratio_vectors(("age", "smile"), [0.1, 1, 3])
    assert [v["age"] / v["smile"] for v in got] == pytest.approx([0.1, 1, 3])
    assert all(isclose(sum(v.values()), 2) for v in got)
    assert got[1] == {"age": 1.0, "smile": 1.0}  # ratio 1 is the default equal weights
    assert ratio_vectors(("age",), [0.1, 10]) == [{"age": 1.0}]


@pytest.mark.parametrize(("shorthand", "k"), [("pairs", 2), ("leave_one_out", 3), ("all", 4)])
@pytest.mark.parametrize("n", [2, 4])
def test_a_simplex_plan_has_the_interior_per_set_and_vertices_collapse(shorthand, k, n):
    """Interior points (every weight > 0) stay in the set: C(N-1, k-1) per set. The rest
    drop tasks: into a set planned before (collapsed, the plan says why) or a new one."""
    sets = len(SHORTHANDS[shorthand])
    plan = plan_of(f"name: t\ngrid: {{tasks: [singles, {shorthand}], weights: {{simplex: {n}}}}}\n")
    in_sets = [t for t in plan.trials if len(t.config.tasks) == k]
    assert len(in_sets) == sets * comb(n - 1, k - 1)
    assert all(isclose(sum(t.config.loss_weights.values()), k) for t in in_sets)
    # Every boundary vector lost a task; those landing on a single task collapse into it.
    boundary = sets * (comb(n + k - 1, k - 1) - comb(n - 1, k - 1))
    smaller = [t for t in plan.trials if 1 < len(t.config.tasks) < k]
    assert plan.collapsed["a zero weight removed a task"] == boundary - len(smaller)
    assert sorted(len(t.config.tasks) for t in plan.trials if len(t.config.tasks) == 1) == [1] * 4
    assert all(
        t.config.loss_weights == {t.config.tasks[0]: 1.0}
        for t in plan.trials
        if len(t.config.tasks) == 1
    )


def test_ratio_lattice_on_pairs_counts_and_vertex_free():
    plan = plan_of("name: t\ngrid: {tasks: [pairs], weights: {ratios: [0.1, 0.3, 1, 3, 10]}}\n")
    assert len(plan.trials) == 6 * 5
    assert not plan.collapsed


def test_a_pair_simplex_vertex_becomes_the_single_task_trial():
    plan = plan_of("name: t\ngrid: {tasks: [age, gender, [age, gender]], weights: {simplex: 2}}\n")
    singles = plan_of("name: t\ngrid: {tasks: [age, gender]}\n")
    assert {t.key for t in plan.trials if len(t.config.tasks) == 1} == {
        t.key for t in singles.trials
    }
    assert [t.config.loss_weights for t in plan.trials if len(t.config.tasks) == 2] == [
        {"age": 1.0, "gender": 1.0}
    ]
    assert plan.collapsed["a zero weight removed a task"] == 2


def test_adaptive_and_single_task_trials_ignore_a_lattice():
    plan = plan_of(
        "name: t\ngrid: {tasks: [age, [age, gender]], weighting: [fixed, dwa],"
        " weights: {ratios: [0.5, 1, 2]}}\n"
    )
    assert (
        sorted(t.config.weighting for t in plan.trials if len(t.config.tasks) == 2)
        == ["dwa"] + ["fixed"] * 3
    )
    assert [t.config.loss_weights for t in plan.trials if len(t.config.tasks) == 1] == [
        {"age": 1.0}
    ]
    assert plan.collapsed["adaptive weighting ignores weight vectors"] == 2


def test_the_lattices_equal_weight_point_is_the_default_trial():
    lattice = plan_of("name: t\ngrid: {tasks: [all], weights: {simplex: 4}}\n")
    default = plan_of("name: t\ngrid: {tasks: [all]}\n").trials[0]
    assert default.key in {t.key for t in lattice.trials}


def test_explicit_weight_vectors_keep_their_keys():
    """Keys computed by the code before lattices existed (commit 3a53c46)."""
    plan = plan_of(
        "name: t\ngrid: {tasks: [singles, [age, gender], all],"
        " weights: [[1,1,1,1], [2, 0.5, 1, 0], {gender: 0.1}]}\n"
    )
    assert {t.name: t.key for t in plan.trials} == {
        "resnet18/age/none/s0": "6c7503c29006",
        "resnet18/gender/none/s0": "7ba35d76ffd8",
        "resnet18/emotion/none/s0": "6a1d17531083",
        "resnet18/smile/none/s0": "593f35304284",
        "resnet18/age+gender/none/s0": "7aeb687d6c97",
        "resnet18/age+gender/none/w2,0.5/s0": "a3f8b44cbac5",
        "resnet18/age+gender/none/w1,0.1/s0": "53eb86b0098e",
        "resnet18/age+gender+emotion+smile/none/s0": "3ae01db7cfae",
        "resnet18/age+gender+emotion/none/w2,0.5,1/s0": "9f1086985b0b",
        "resnet18/age+gender+emotion+smile/none/w1,0.1,1,1/s0": "858cd04305ce",
    }


@pytest.mark.parametrize(
    ("weights", "path", "message"),
    [
        ("{ratios: [0.5, 2]}", "grid.weights[0]", "ratios trace a pair of tasks"),
        ("{ratios: [0, 2]}", "grid.weights[0].ratios[0]", "greater than 0"),
        ("{simplex: 0}", "grid.weights[0].simplex", "greater than or equal to 1"),
        ("{simplex: 3, ratios: [1]}", "grid.weights[0]", "exactly one of ratios or simplex"),
        ("{simplex: 3, age: 1}", "grid.weights[0].age", "unknown key 'age'"),
        ("[[1, 1, 1, 1], {simplex: true}]", "grid.weights[1].simplex", "true/false"),
    ],
)
def test_bad_lattices_exit_2_naming_the_key(cli, tmp_path, weights, path, message):
    spec = tmp_path / "t.yaml"
    spec.write_text(f"name: t\ngrid: {{tasks: [pairs, all], weights: {weights}}}\n")
    result = cli("plan", str(spec), "--offline")
    assert result.code == 2
    line = result.err.strip()
    assert "\n" not in line
    assert line.startswith(f"error: {spec}: {path}: "), line
    assert message in line


def test_the_fronts_spec_traces_two_pairs_with_three_strategies_and_singles():
    plan = expand(load_spec(SWEEPS / "fronts.yaml"), "fronts.yaml")
    per_set = Counter((t.config.tasks, t.config.weighting) for t in plan.trials)
    for pair in (("age", "gender"), ("emotion", "smile")):
        assert per_set[(pair, "fixed")] == 7 * 3
        assert all(per_set[(pair, w)] == 3 for w in ("uncertainty", "dwa", "gradnorm"))
    assert sorted(t.config.tasks[0] for t in plan.trials if len(t.config.tasks) == 1) == sorted(
        ["age", "gender", "emotion", "smile"] * 3
    )
    assert len(plan.trials) == 72
    assert {t.config.sources[t.config.tasks[0]].kind for t in plan.trials} == {"synthetic"}
