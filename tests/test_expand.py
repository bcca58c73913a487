"""Grid expansion: shorthands, collapse, include/exclude, and key stability."""

from __future__ import annotations

import json

import pytest

from mtl_core import contract as C
from mtl_core.tasks import SHORTHANDS
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec, parse_spec

from .conftest import SWEEPS


def plan_of(text: str, *overrides: str):
    return expand(parse_spec(text, "t.yaml", list(overrides)), "t.yaml")


@pytest.mark.parametrize(
    ("shorthand", "count"),
    [("singles", 4), ("all", 1), ("pairs", 6), ("leave_one_out", 4), ("powerset", 15)],
)
def test_each_shorthand_expands_to_its_count(shorthand, count):
    assert len(SHORTHANDS[shorthand]) == count
    assert len(plan_of(f"name: t\ngrid: {{tasks: [{shorthand}]}}\n").trials) == count


def test_shorthands_combine_and_duplicates_collapse():
    plan = plan_of("name: t\ngrid: {tasks: [singles, pairs, all, [gender, age], age]}\n")
    assert len(plan.trials) == 4 + 6 + 1
    assert plan.collapsed == {"duplicate task set in grid.tasks": 2}
    assert plan.cells == 13


def test_task_order_within_a_set_does_not_matter():
    a = plan_of("name: t\ngrid: {tasks: [[smile, age]]}\n").trials[0]
    b = plan_of("name: t\ngrid: {tasks: [[age, smile]]}\n").trials[0]
    assert a.key == b.key
    assert a.config.tasks == ("age", "smile")


def test_single_task_trials_ignore_weight_vectors():
    plan = plan_of("name: t\ngrid: {tasks: [singles, all], weights: [[1,1,1,1],[1,0.1,1,1]]}\n")
    assert len(plan.trials) == 4 + 2
    assert plan.collapsed == {"single-task trials ignore weight vectors": 4}
    for t in plan.trials:
        if len(t.config.tasks) == 1:
            assert t.config.loss_weights == {t.config.tasks[0]: 1.0}
    mtl = [t for t in plan.trials if len(t.config.tasks) == 4]
    assert sorted(t.config.loss_weights["gender"] for t in mtl) == [0.1, 1.0]


def test_zero_weight_removes_a_task_and_collapses_with_the_existing_set():
    plan = plan_of(
        "name: t\ngrid: {tasks: [all, [age, emotion, smile]], weights: [[1,0,1,1],[1,1,1,1]]}\n"
    )
    by_tasks = sorted(t.config.tasks for t in plan.trials)
    assert by_tasks == [("age", "emotion", "smile"), ("age", "gender", "emotion", "smile")]
    assert plan.collapsed == {"a zero weight removed a task": 2}


def test_zero_weights_can_empty_a_cell():
    plan = plan_of("name: t\ngrid: {tasks: [[gender, smile], age], weights: [[1,0,1,0]]}\n")
    assert [t.config.tasks for t in plan.trials] == [("age",)]
    assert plan.collapsed == {"all of its tasks have zero weight": 1}


def test_fixed_weights_apply_only_to_the_trials_own_tasks():
    plan = plan_of("name: t\ngrid: {tasks: [[age, smile]], weights: [[2, 0.5, 0.3, 4]]}\n")
    assert plan.trials[0].config.loss_weights == {"age": 2.0, "smile": 4.0}


def test_weights_as_mapping_default_to_one():
    plan = plan_of("name: t\ngrid: {tasks: [all], weights: [{gender: 0.1}]}\n")
    weights = plan.trials[0].config.loss_weights
    assert weights == {"age": 1.0, "gender": 0.1, "emotion": 1.0, "smile": 1.0}


def test_adaptive_strategies_ignore_weight_vectors():
    plan = plan_of(
        "name: t\ngrid: {tasks: [singles, all], weighting: [fixed, uncertainty, dwa],"
        " weights: [[1,1,1,1],[1,0.1,1,1]]}\n"
    )
    mtl = [t for t in plan.trials if len(t.config.tasks) == 4]
    assert sorted(t.config.weighting for t in mtl) == ["dwa", "fixed", "fixed", "uncertainty"]
    assert len([t for t in plan.trials if len(t.config.tasks) == 1]) == 4
    assert all(t.config.weighting == "fixed" for t in plan.trials if len(t.config.tasks) == 1)
    assert plan.collapsed["adaptive weighting ignores weight vectors"] == 2


def test_exclude_drops_matching_cells():
    plan = plan_of(
        "name: t\nstages: {imdb_wiki: {source: {kind: synthetic}}}\n"
        "grid:\n  tasks: [singles]\n  backbone: [resnet18, resnet50]\n"
        "  pretrain: [none, imdb_wiki]\n"
        "  exclude: [{backbone: resnet50, pretrain: imdb_wiki}]\n"
    )
    assert plan.cells == 16
    assert plan.excluded == 4
    assert len(plan.trials) == 12
    assert not [t for t in plan.trials if t.config.backbone == "resnet50" and t.pretrain != "none"]
    assert {j.config.backbone for j in plan.jobs} == {"resnet18"}


def test_exclude_matches_task_sets_by_shorthand():
    plan = plan_of(
        "name: t\ngrid: {tasks: [singles, all], seed: [0, 1],"
        " exclude: [{tasks: [singles], seed: 1}]}\n"
    )
    assert len(plan.trials) == 4 + 2


def test_include_adds_cells_with_grid_defaults_and_labels():
    plan = plan_of(
        "name: t\ngrid:\n  tasks: [all]\n  seed: [0, 1]\n"
        "  include:\n    - {label: SSR-Net, backbone: ssrnet, tasks: [age],"
        " train: {image_size: 64}}\n"
    )
    assert len(plan.main) == 2
    ref = plan.reference
    assert len(ref) == 2
    assert {t.config.seed for t in ref} == {0, 1}  # omitted axis takes the grid's values
    assert all(t.config.train.image_size == 64 for t in ref)
    assert plan.included == 2


def test_include_of_an_existing_cell_collapses():
    plan = plan_of("name: t\ngrid: {tasks: [singles], include: [{tasks: [age]}]}\n")
    assert len(plan.trials) == 4


def test_reference_model_forces_its_age_head():
    plan = plan_of(
        "name: t\ngrid: {tasks: [all], include: [{label: DEX, backbone: dex, tasks: [age]}]}\n"
    )
    assert plan.reference[0].config.train.age_head == "dex"


YAML_A = """\
name: a
train: {epochs: 3, batch_size: 16, optimizer: {name: adamw, lr: 0.001}}
stages:
  pre: {source: {kind: synthetic, train: 64}, tasks: [age, gender], epochs: 1}
grid:
  tasks: [singles, all]
  backbone: [resnet18, alexnet]
  pretrain: [none, pre]
  seed: [0, 1]
"""
YAML_B = """\
grid:
  seed: [1, 0]
  pretrain: [pre, none]
  backbone: [alexnet, resnet18]
  tasks: [all, singles]
stages:
  pre: {epochs: 1, tasks: [gender, age], source: {train: 64, kind: synthetic}}
train: {optimizer: {lr: 0.001, name: adamw}, batch_size: 16, epochs: 3}
name: b
"""


def test_keys_ignore_yaml_key_order_and_grid_order():
    a, b = plan_of(YAML_A), plan_of(YAML_B)
    assert {t.key for t in a.trials} == {t.key for t in b.trials}
    assert {j.key for j in a.jobs} == {j.key for j in b.jobs}
    assert len(a.trials) == 2 * 2 * 2 * 5


def test_key_changes_with_the_learning_rate():
    base = {t.key for t in plan_of(YAML_A).trials}
    changed = {t.key for t in plan_of(YAML_A, "train.optimizer.lr=0.002").trials}
    assert not base & changed


def test_stage_change_changes_only_pretrained_trials():
    base = plan_of(YAML_A)
    changed = plan_of(YAML_A, "stages.pre.epochs=2")
    same = {t.key for t in base.trials} & {t.key for t in changed.trials}
    assert same == {t.key for t in base.trials if t.pretrain == "none"}
    assert {j.key for j in base.jobs}.isdisjoint({j.key for j in changed.jobs})


def test_execution_settings_do_not_change_keys():
    base = {t.key for t in plan_of(YAML_A).trials}
    for override in (
        "train.device=cpu",
        "train.workers=4",
        "train.compile=true",
        "resources.gpu=0.5",
        "tracking.experiment=other",
        "failure.retries=3",
        "name=renamed",
    ):
        assert {t.key for t in plan_of(YAML_A, override).trials} == base, override


def test_one_pretrain_job_per_stage_and_backbone_shared_by_seeds():
    plan = plan_of(YAML_A)
    assert len(plan.jobs) == 2
    for job in plan.jobs:
        users = [t for t in plan.trials if t.pretrain_key == job.key]
        assert {t.config.seed for t in users} == {0, 1}
        assert {t.config.backbone for t in users} == {job.config.backbone}


def test_growing_the_grid_keeps_existing_keys():
    base = {t.key for t in plan_of(YAML_A).trials}
    grown = {t.key for t in plan_of(YAML_A, "grid.seed=[0, 1, 2]").trials}
    assert base < grown
    assert len(grown - base) == 2 * 2 * 5


def test_an_override_of_one_yaml_alias_leaves_the_others_alone():
    spec = load_spec(SWEEPS / "smoke.yaml", ["data.age.train=100"])
    assert spec.data.age.train == 100
    assert spec.data.gender.train == spec.stages["tiny"].source.train == 48


def test_a_source_without_kind_is_synthetic():
    spec = parse_spec("name: t\ndata: {age: {train: 100}}\n", "t.yaml")
    assert spec.data.age.kind == "synthetic" and spec.data.age.train == 100


def test_settings_that_do_not_apply_leave_keys_alone():
    # Momentum and a step schedule's gamma are read by an include rule's sgd/step trials
    # only (written where nothing reads them, they are refused: test_spec_errors).
    text = YAML_A.replace(
        "  seed: [0, 1]\n",
        "  seed: [0, 1]\n  include: [{tasks: [[smile]], backbone: [resnet18], pretrain: [none],"
        " seed: [0], train: {optimizer: {name: sgd}, schedule: {name: step, step_size: 1}}}]\n",
    )
    plan = plan_of(text)
    base = {t.key for t in plan.trials}
    adamw = {t.key for t in plan.trials if t.config.train.optimizer.name == "adamw"}
    for override in ("train.optimizer.momentum=0.5", "train.schedule.gamma=0.5"):
        keys = {t.key for t in plan_of(text, override).trials}
        assert adamw <= keys, override  # the trials that never read it keep their keys
        assert len(keys - base) == 1, override  # the include rule's trial reads it
    assert {t.key for t in plan_of(text, "train.eval_batch_size=32").trials} == base
    # Under per_epoch the epoch rule matters only to trials that read several sources (all
    # four tasks); matched budgets never read it, so there it is refused (test_spec_errors).
    old = "train.budget.rule=per_epoch"
    keys = {t.key for t in plan_of(YAML_A, old, "data.epoch_rule=sum").trials}
    per_epoch = plan_of(YAML_A, old).trials
    singles = {t.key for t in per_epoch if len(t.config.tasks) == 1}
    assert singles <= keys and keys != {t.key for t in per_epoch}
    assert {t.key for t in plan_of(YAML_A, "train.optimizer.name=sgd").trials}.isdisjoint(base)


def test_a_given_step_budget_ignores_the_reference_split():
    given = ("train.budget.steps=50",)
    steps = {t.key for t in plan_of(YAML_A, *given).trials}
    assert {t.key for t in plan_of(YAML_A, *given, "train.budget.reference=emotion").trials} == (
        steps
    )
    # Without a step count the reference split sizes S, so naming another one moves keys.
    base = {t.key for t in plan_of(YAML_A).trials}
    assert base.isdisjoint(t.key for t in plan_of(YAML_A, "train.budget.reference=emotion").trials)


def test_settings_of_the_other_budget_rule_are_refused(cli, write_spec):
    path = write_spec("name: t\ntrain: {steps_per_epoch: 5}\n")
    result = cli("plan", str(path), "--offline")
    assert result.code == 2 and "train.steps_per_epoch" in result.err
    path = write_spec("name: t\ntrain: {budget: {rule: per_epoch}, eval_every: 5}\n")
    result = cli("plan", str(path), "--offline")
    assert result.code == 2 and "train.eval_every" in result.err


def test_the_reference_split_sizes_every_trial_of_a_sweep_by_epochs():
    plan = plan_of(YAML_A)
    refs = {t.config.train.budget.reference for t in plan.trials}
    assert refs == {"age"}  # the first task the sweep trains, for single- and multi-task alike
    # Its data enter every key, even of trials that do not train age.
    gender = {t.key for t in plan.trials if t.config.tasks == ("gender",)}
    moved = {t.key for t in plan_of(YAML_A, "data.age.train=99").trials}
    assert gender.isdisjoint(moved)


def test_the_default_reference_is_a_task_some_trial_trains():
    # A zero weight removes age from the only trial: gender's split sizes the budget.
    plan = plan_of("name: t\ngrid: {tasks: [all], weights: [[0, 1, 1, 1]]}\n")
    assert [(t.config.tasks, t.config.train.budget.reference) for t in plan.trials] == [
        (("gender", "emotion", "smile"), "gender")
    ]


def test_a_reference_model_pretrains_only_its_own_tasks(paper_env):
    plan = expand(load_spec(SWEEPS / "paper.yaml"))
    jobs = {j.config.backbone: j.config.tasks for j in plan.jobs}
    assert jobs["dex"] == ("age",)
    assert jobs["resnet18"] == ("age", "gender")


def test_plan_counts_a_job_finished_by_another_sweep_as_done_like_run(cli, tmp_path):
    # `run` skips a pretraining job with a FINISHED run in any experiment; `plan` says so.
    from mlflow import MlflowClient

    spec = str(SWEEPS / "smoke.yaml")
    (job,) = expand(load_spec(spec, ()), spec).jobs
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    other = client.create_experiment("another-sweep")
    run = client.create_run(other, tags={C.KIND: C.KIND_PRETRAIN, C.KEY: job.key})
    client.set_terminated(run.info.run_id, "FINISHED")
    result = cli("plan", spec, "--tracking-uri", uri, "--format", "json")
    assert result.code == 0, result.err
    planned = json.loads(result.out)
    assert [j["done"] for j in planned["pretrain_jobs"]] == [True]
    assert not any(t["done"] for t in planned["trials"])


def test_a_stage_budget_is_known_only_once_its_data_are_read():
    # A stage's train split is the IMDB-WIKI-format set less held-out and cleaned entries:
    # the plan cannot size it from the spec (it used the downstream train size instead).
    from mtl_sweep.budget import planned_budget

    spec = str(SWEEPS / "smoke.yaml")
    (job,) = expand(load_spec(spec, ()), spec).jobs
    assert planned_budget(job.config).steps is None
    fixed = ("stages.tiny.train={budget: {steps: 5}}",)
    (job,) = expand(load_spec(spec, fixed), spec).jobs
    assert planned_budget(job.config).steps == 5
