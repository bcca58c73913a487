"""The rounds (validations) a trial runs, and the rungs its scheduler judges it at."""

from __future__ import annotations

import math

from mtl_core.trial import TrialConfig
from mtl_sweep.budget import planned_budget
from mtl_sweep.spec.search import SchedulerSpec

ROUNDS_UNKNOWN = 10  # matched budgets validate about ten times unless eval_every says more


def planned_rounds(config: TrialConfig) -> int | None:
    """Rounds of `config` as the trainable will plan them (trainables.trainable.plan_rounds);
    None where the data must be read to know."""
    t = config.train
    if not config.matched:
        return t.epochs
    steps = planned_budget(config).steps
    if steps is None:
        return None
    every = t.eval_every or max(1, steps // 10)
    return math.ceil(steps / every)


def rungs(scheduler: SchedulerSpec, rounds: int | None) -> list[int]:
    """The rounds at which a trial may be stopped: grace x rf^k below the last round (as
    Ray's schedulers place them with max_t just under it); [] without a scheduler."""
    if scheduler.name == "none":
        return []
    last = rounds or ROUNDS_UNKNOWN
    out, t = [], float(scheduler.grace_rounds)
    while t < last:
        out.append(round(t))
        t *= scheduler.reduction_factor
    return out
