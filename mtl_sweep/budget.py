"""Budgets at expansion: the reference split a matched budget is sized by, and what a
trial's budget will be, known before anything runs (for `mtl-sweep plan`).

The rule itself is mtl_core/budget.py. The trainable applies it to the data it loads and
logs `budget/*` metrics; here it gets the sizes from the spec alone, so the numbers are
known only where the spec gives the split sizes (synthetic sources) or the step count
(`budget.steps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl_core.budget import trial_budget
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
    if config.is_pretrain and config.train.budget.steps is None:
        # A stage reads the IMDB-WIKI-format set: its train split is what is left after
        # the held-out split and the cleaning, known only once the data are read.
        return PlannedBudget(None, dict.fromkeys(config.tasks))
    groups = config.source_groups().values()
    sizes = [_train_size(config.sources[g[0]]) for g in groups]
    reference = config.budget_reference
    budget = trial_budget(config, sizes, _train_size(reference[0]) if reference else None)
    return PlannedBudget(budget.steps, budget.images)


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
