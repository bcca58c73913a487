"""Matched budgets: the same steps and the same images per task, alone or together."""

from __future__ import annotations

import torch

from mtl_sweep.budget import planned_budget
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec
from trainables.optim import build_scheduler
from trainables.trial_data import load_data

from .conftest import SWEEPS

TINY = ["grid.pretrain=[none]", "grid.tasks=[age, emotion, all]", "train.epochs=3"]


def _budgets(tmp_path, *overrides):
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, *overrides])
    trials = {t.config.tasks: t.config for t in expand(spec).trials}
    data = {tasks: load_data(cfg, tmp_path / "cache") for tasks, cfg in trials.items()}
    return trials, data


def test_matched_trials_log_equal_steps_and_images_per_task(tmp_path):
    trials, data = _budgets(tmp_path)
    logged = {tasks: d.budget_metrics() for tasks, d in data.items()}
    four = logged[("age", "gender", "emotion", "smile")]
    # S = 3 epochs x 48 age train images / 16 per step = 9, for every trial.
    assert {m["budget/steps"] for m in logged.values()} == {9}
    for task in ("age", "emotion"):
        assert logged[(task,)][f"budget/{task}_images"] == four[f"budget/{task}_images"] == 144
    # Gender and smile share CelebA's 16 images per step.
    assert four["budget/gender_images"] == four["budget/smile_images"] == 144
    # The plan predicts what the trainable logs.
    for tasks, cfg in trials.items():
        planned = planned_budget(cfg)
        assert planned.steps == logged[tasks]["budget/steps"]
        assert all(planned.images[t] == logged[tasks][f"budget/{t}_images"] for t in tasks)


def test_the_old_rule_gives_the_arms_different_budgets(tmp_path):
    _, data = _budgets(tmp_path, "train.budget.rule=per_epoch")
    alone = data[("age",)].budget_metrics()
    together = data[("age", "gender", "emotion", "smile")].budget_metrics()
    # Alone: 3 x 48 / 16 = 9 steps of 16. Together: 3 sources split 16 as 6/5/5, so an
    # epoch is ceil(48 / 5) = 10 steps; age sees 30 x 6 = 180 images.
    assert (alone["budget/steps"], alone["budget/age_images"]) == (9, 144)
    assert (together["budget/steps"], together["budget/age_images"]) == (30, 180)


def _warmup_end(data, epochs: int) -> int:
    """The first optimizer step at which the lr reaches its peak."""
    from mtl_core.settings import ScheduleSpec

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = build_scheduler(
        opt, epochs, ScheduleSpec(name="cosine", warmup_epochs=1), data.steps_per_epoch, True
    )
    for step in range(data.total_steps):
        if opt.param_groups[0]["lr"] >= 1.0 - 1e-9:
            return step
        opt.step()
        sched.step()
    raise AssertionError("the warmup never ended")


def test_warmup_ends_at_the_same_step_with_one_source_or_three(tmp_path):
    _, data = _budgets(tmp_path, "train.schedule.warmup_epochs=1")
    one = _warmup_end(data[("age",)], 3)
    three = _warmup_end(data[("age", "gender", "emotion", "smile")], 3)
    assert one == three == 3  # one epoch of the budget: 9 steps / 3 epochs


def _four_task_config(*overrides: str):
    """The four-task trial's config in the small smoke grid, with `overrides`."""
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, *overrides])
    return next(t.config for t in expand(spec).trials if len(t.config.tasks) == 4)


def test_the_budget_rule_is_one_function_of_the_split_sizes():
    """mtl_core.budget.trial_budget is what both the planner and the trainable call."""
    from mtl_core.budget import trial_budget

    matched = _four_task_config()
    assert matched.budget_reference is not None  # sized by the age task's train split
    # S = ceil(3 epochs x 50 / 16) = 10, every task sees 16 of its images a step.
    budget = trial_budget(matched, [None, None, None], reference_size=50)
    assert (budget.steps, budget.steps_per_epoch) == (10, 10 / 3)
    assert budget.images == dict.fromkeys(matched.tasks, 160)
    assert trial_budget(matched, [1, 2, 3], reference_size=None).steps is None  # unknown N_ref

    per_epoch = _four_task_config("train.budget.rule=per_epoch")
    assert per_epoch.budget_reference is None
    # Three sources split 16 as 6/5/5; "longest": max(ceil(48/6), ceil(40/5), ceil(30/5)) = 8.
    budget = trial_budget(per_epoch, [48, 40, 30], reference_size=None)
    assert (budget.steps, budget.steps_per_epoch) == (24, 8.0)
    assert budget.per_step == {"age": 6, "gender": 5, "smile": 5, "emotion": 5}
    summed = _four_task_config("train.budget.rule=per_epoch", "data.epoch_rule=sum")
    assert trial_budget(summed, [48, 40, 30], None).steps == 3 * 8  # ceil(118 / 16) = 8
    capped = _four_task_config("train.budget.rule=per_epoch", "train.steps_per_epoch=5")
    assert trial_budget(capped, [48, 40, 30], None).steps == 15
    assert trial_budget(per_epoch, [48, None, 30], None).steps is None
