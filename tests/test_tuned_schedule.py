"""Early stopping within a cell, on Ray Tune's own schedulers driven by simulated trials.

A fake controller stands in for Tune's: trials report one round at a time, two run at
once, and a scheduler's PAUSE/STOP are obeyed as Tune would. The halving is Ray's.
"""

from __future__ import annotations

from collections import Counter

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from mtl_core import contract as C
from mtl_sweep.run.cell_scheduler import CellScheduler, make_scheduler
from mtl_sweep.search.select import SearchResult, winner
from mtl_sweep.spec.search import SchedulerSpec

ROUNDS = 4


class FakeController:
    """What a scheduler calls on Tune's controller."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.trials: list[Trial] = []
        self.scheduler = scheduler

    def get_trials(self) -> list[Trial]:
        return self.trials

    def stop_trial(self, trial: Trial) -> None:
        trial.status = Trial.TERMINATED
        self.scheduler.on_trial_remove(self, trial)


def _trial(cell: str, index: int) -> Trial:
    trial = Trial("__fake", stub=True, trial_id=f"{cell}{index}", config={"cell": cell})
    trial.status = Trial.PENDING
    return trial


def simulate(scheduler: CellScheduler, trials: list[Trial], objective, slots: int = 2):
    """Run `trials` to the end or their stop; returns rounds per trial id."""
    tc = FakeController(scheduler)
    for trial in trials:
        tc.trials.append(trial)
        scheduler.on_trial_add(tc, trial)
    rounds: Counter[str] = Counter()
    while True:
        running = [t for t in trials if t.status == Trial.RUNNING]
        if len(running) < slots:
            nxt = scheduler.choose_trial_to_run(tc)
            if nxt is not None:
                nxt.status = Trial.RUNNING
                continue
        if not running:
            return rounds
        trial = min(running, key=lambda t: rounds[t.trial_id])  # they progress alike
        rounds[trial.trial_id] += 1
        r = rounds[trial.trial_id]
        result = {
            "rounds_done": r,
            C.SEARCH_OBJECTIVE: objective(trial, r),
            "final": r == ROUNDS,
        }
        action = scheduler.on_trial_result(tc, trial, result)
        if action == TrialScheduler.PAUSE:
            trial.status = Trial.PAUSED
        elif action == TrialScheduler.STOP or r == ROUNDS:
            trial.status = Trial.TERMINATED
            scheduler.on_trial_complete(tc, trial, result)


def _cells(spec: SchedulerSpec, shared: bool = False) -> CellScheduler:
    one = make_scheduler(spec, ROUNDS)
    return CellScheduler(
        lambda cell: one if shared else make_scheduler(spec, ROUNDS), lambda t: t.config["cell"]
    )


ASHA = SchedulerSpec(name="asha", grace_rounds=1, reduction_factor=3)
HYPERBAND = SchedulerSpec(name="hyperband", reduction_factor=3)


def _results(scheduler: CellScheduler, rounds, trials, objective) -> dict[str, list]:
    out: dict[str, list] = {}
    for i, t in enumerate(trials):
        stopped = t.trial_id in scheduler.stopped
        value = None if stopped else objective(t, ROUNDS)
        result = SearchResult(t.config["cell"], i, t.trial_id, t.trial_id, {}, value, 0, stopped)
        out.setdefault(t.config["cell"], []).append(result)
    return out


def test_a_cell_whose_every_trial_is_worse_still_gets_a_full_budget_winner():
    """Cell A's trials are all worse than cell B's: A's best still trains to the end and
    becomes A's final configuration. One scheduler shared across cells would stop it."""

    def objective(trial: Trial, r: int) -> float:
        base = 0.8 if trial.config["cell"] == "B" else 0.1
        return base + 0.01 * int(trial.trial_id[1:]) + 0.001 * r  # A2 is A's best

    def run(shared: bool):
        trials = [_trial("B", i) for i in range(3)] + [_trial("A", i) for i in range(3)]
        scheduler = _cells(ASHA, shared)
        rounds = simulate(scheduler, trials, objective)
        return scheduler, rounds, trials

    scheduler, rounds, trials = run(shared=False)
    a_full = [t for t in ("A0", "A1", "A2") if rounds[t] == ROUNDS]
    assert a_full, rounds
    best = winner(_results(scheduler, rounds, trials, objective)["A"])
    assert best is not None and best.key in a_full
    assert best.key == max(a_full, key=lambda k: int(k[1:]))
    _, shared_rounds, _ = run(shared=True)
    assert all(shared_rounds[t] < ROUNDS for t in ("A0", "A1", "A2")), shared_rounds


def test_a_trial_stopped_early_never_becomes_the_final_configuration():
    def objective(trial: Trial, r: int) -> float:  # the second sample leads early, then fades
        return {0: 0.5, 1: 0.9 if r == 1 else 0.1, 2: 0.2}[int(trial.trial_id[1:])]

    trials = [_trial("A", i) for i in range(3)]
    scheduler = _cells(ASHA)
    rounds = simulate(scheduler, trials, objective)
    best = winner(_results(scheduler, rounds, trials, objective)["A"])
    assert rounds[best.key] == ROUNDS and best.key not in scheduler.stopped


@pytest.mark.parametrize("spec", [HYPERBAND], ids=["hyperband"])
def test_synchronous_halving_spends_the_same_search_steps_in_every_cell(spec):
    """Two cells whose samples rank in opposite orders: synchronous HyperBand halves each
    bracket only once all its trials reached the rung, so both spend the same rounds."""

    def objective(trial: Trial, r: int) -> float:
        i = int(trial.trial_id[1:])
        return (i if trial.config["cell"] == "A" else 5 - i) + 0.01 * r

    trials = [_trial(c, i) for i in range(6) for c in ("A", "B")]  # the dispatcher's turns
    scheduler = _cells(spec)
    rounds = simulate(scheduler, trials, objective)
    spent = {c: sum(n for t, n in rounds.items() if t[0] == c) for c in "AB"}
    assert scheduler.stopped  # it does stop trials early
    assert max(spent.values()) / min(spent.values()) <= 1.10, spent
