"""Budgets at expansion: the reference split a matched budget is sized by, and what a
trial's budget will be, known before anything runs (for `mtl-sweep plan`).

The trainable computes the same numbers from the data it loads and logs them as
`budget/*` metrics; here they come from the spec alone, so they are known only where the
spec gives the split sizes (synthetic sources) or the step count (`budget.steps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mtl_core.settings import TrainSettings
from mtl_core.sources import Source, SyntheticSource, absolute_source
from mtl_core.trial import TrialConfig


@dataclass(frozen=True)
class PlannedBudget:
    """Steps and each task's images; None where the data must be read to know."""

    steps: int | None
    images: dict[str, int | None]  # task -> its own labelled images over the trial


def _train_size(source: Source | None) -> int | None:
    return source.train if isinstance(source, SyntheticSource) else None


def planned_budget(config: TrialConfig) -> PlannedBudget:
    """The budget `config` will train with, as far as the spec tells (see module docstring)."""
    t = config.train
    if config.is_pretrain and t.budget.steps is None:
        # A stage reads the IMDB-WIKI-format set: its train split is what is left after
        # the held-out split and the cleaning, known only once the data are read.
        return PlannedBudget(None, dict.fromkeys(config.tasks))
    groups = list(config.source_groups().values())  # tasks that share one source
    if config.matched:
        steps = t.budget.steps
        if steps is None:
            n_ref = _train_size(config.budget_source)
            steps = None if n_ref is None else math.ceil(t.epochs * n_ref / t.batch_size)
        per_step = t.batch_size
        images = {task: None if steps is None else steps * per_step for task in config.tasks}
        return PlannedBudget(steps, images)
    # per_epoch: the batch is split across sources; an epoch is set by data.epoch_rule.
    base, extra = divmod(t.batch_size, len(groups))
    shares = [base + (1 if i < extra else 0) for i in range(len(groups))]
    sizes = [_train_size(config.sources[g[0]]) for g in groups]
    if any(n is None for n in sizes):
        return PlannedBudget(None, dict.fromkeys(config.tasks))
    if config.epoch_rule == "longest" or len(groups) == 1:
        per_epoch = max(math.ceil(n / b) for n, b in zip(sizes, shares, strict=True))
    else:
        per_epoch = math.ceil(sum(sizes) / t.batch_size)
    if t.steps_per_epoch:
        per_epoch = min(per_epoch, t.steps_per_epoch)
    steps = t.epochs * per_epoch
    images = {task: steps * b for g, b in zip(groups, shares, strict=True) for task in g}
    return PlannedBudget(steps, images)


def with_reference(train: TrainSettings, reference: str) -> TrainSettings:
    """A matched budget sized by epochs gets the sweep's reference task, unless it names one."""
    budget = train.budget
    if budget.rule != "matched" or budget.steps is not None or budget.reference is not None:
        return train
    return train.model_copy(update={"budget": budget.model_copy(update={"reference": reference})})


def budget_source(train: TrainSettings, data: object) -> Source | None:
    """The source (of the spec's `data`) whose train split sizes a matched budget given in
    epochs; None when S is given or the rule is per_epoch."""
    budget = train.budget
    if budget.rule != "matched" or budget.steps is not None:
        return None
    assert budget.reference is not None
    return absolute_source(getattr(data, budget.reference))
