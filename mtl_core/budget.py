"""The training budget rule, written once: the optimizer steps a trial takes and the images
each task sees per step. Trial keys and fair comparisons rest on it.

- matched: every compared trial takes the same S steps: `budget.steps`, else
  S = ceil(epochs x N_ref / batch_size), with N_ref the usable train images of the
  reference task's split (`TrialConfig.budget_reference`). Every task sees batch_size of
  its own images per step (its part of the batch).
- per_epoch: S = epochs x the trial's own epoch, whose length follows `epoch_rule` over the
  trial's sources (`epoch_steps`), capped by `steps_per_epoch`. The batch is split across
  sources (`batch_shares`).

The planner calls `trial_budget` with split sizes from the spec (synthetic sources; None
where only the data can tell) and the trainable with the sizes of the splits it loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mtl_core.trial import TrialConfig

EPOCH_RULES = ("longest", "sum")


@dataclass(frozen=True)
class Budget:
    """Steps over the trial, steps of one schedule epoch, each task's images per step.
    None where a size the rule needs is not known."""

    steps: int | None
    steps_per_epoch: float | None
    per_step: dict[str, int]  # task -> its own labelled images in one batch

    @property
    def images(self) -> dict[str, int | None]:
        """Each task's own labelled images over the trial."""
        return {t: None if self.steps is None else self.steps * b for t, b in self.per_step.items()}


def batch_shares(batch_size: int, parts: int) -> list[int]:
    """The batch split evenly across `parts` sources, the remainder to the first ones."""
    base, extra = divmod(batch_size, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def epoch_steps(sizes: Sequence[int], batch_size: int, rule: str) -> int:
    """One per_epoch epoch in steps, before any cap: "longest" is one pass over the longest
    part, max_i ceil(n_i / b_i); "sum" is ceil(sum_i n_i / batch_size)."""
    if rule not in EPOCH_RULES:
        raise ValueError(f"unknown epoch rule {rule!r}; known: {', '.join(EPOCH_RULES)}")
    if rule == "longest" or len(sizes) == 1:
        shares = batch_shares(batch_size, len(sizes))
        return max(math.ceil(n / b) for n, b in zip(sizes, shares, strict=True))
    return math.ceil(sum(sizes) / batch_size)


def trial_budget(
    config: TrialConfig, part_sizes: Sequence[int | None], reference_size: int | None
) -> Budget:
    """The budget of `config` (module docstring).

    part_sizes: the train split size of each of the trial's sources, in the order of
    `config.source_groups()`; reference_size: N_ref, the usable train images of
    `config.budget_reference` (unused unless the budget is matched and given in epochs).
    """
    t = config.train
    groups = list(config.source_groups().values())
    if config.matched:
        steps = t.budget.steps
        if steps is None and reference_size is not None:
            steps = math.ceil(t.epochs * reference_size / t.batch_size)
        per_step = dict.fromkeys(config.tasks, t.batch_size)
        return Budget(steps, None if steps is None else steps / t.epochs, per_step)
    shares = batch_shares(t.batch_size, len(groups))
    per_step = {task: b for g, b in zip(groups, shares, strict=True) for task in g}
    if any(n is None for n in part_sizes):
        return Budget(None, None, per_step)
    per_epoch = epoch_steps([int(n) for n in part_sizes], t.batch_size, config.epoch_rule)
    if t.steps_per_epoch:
        per_epoch = min(per_epoch, t.steps_per_epoch)
    return Budget(t.epochs * per_epoch, float(per_epoch), per_step)
