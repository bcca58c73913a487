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
    """The rounds at which a trial may be stopped: ASHA's grace x rf^k below the last round
    (Ray's placement with max_t just under it); HyperBand's milestones over its brackets;
    [] without a scheduler."""
    if scheduler.name == "none":
        return []
    if scheduler.name == "hyperband":
        at = {r for bracket in hyperband_brackets(scheduler, rounds) for r in bracket[1][:-1]}
        return sorted(at)
    last = rounds or ROUNDS_UNKNOWN
    out, t = [], float(scheduler.grace_rounds)
    while t < last:
        out.append(round(t))
        t *= scheduler.reduction_factor
    return out


def hyperband_brackets(scheduler: SchedulerSpec, rounds: int | None) -> list[tuple[int, list[int]]]:
    """Ray's HyperBandScheduler brackets for max_t = rounds: (the trials it takes, the
    rounds at which it halves them, ending at the full budget), sized as
    ray.tune.schedulers.hyperband does: s_max + 1 brackets of n = ceil((s_max + 1) /
    (s + 1) eta^s) trials, a first rung at int(R eta^-s) (a bracket whose rung would be 0
    is skipped), each next one eta times further, cumulated and capped at R."""
    last, eta = rounds or ROUNDS_UNKNOWN, scheduler.reduction_factor
    s_max_1 = round(math.log(last) / math.log(eta)) + 1
    out = []
    for s in range(s_max_1):
        r = int(last * eta**-s)
        if r == 0:
            continue
        at, cumul = [r], r
        for _ in range(s):
            r = int(min(r * eta, last - cumul))
            cumul += r
            at.append(cumul)
        out.append((math.ceil(s_max_1 / (s + 1) * eta**s), at))
    return out
