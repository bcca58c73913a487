"""The sweep's progress line: counts follow Tune's events in the order Tune sends them."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from mtl_sweep.run.progress import REFRESH_S, SETTLE_S, ProgressView


@dataclass
class FakeTrial:
    trial_id: str
    status: str = "PENDING"  # Tune calls on_trial_start before it sets RUNNING
    config: dict = field(default_factory=dict)
    last_result: dict = field(default_factory=lambda: {"final": True})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def view(total: int, concurrency: int = 2) -> tuple[ProgressView, io.StringIO, Clock]:
    clock, out = Clock(), io.StringIO()  # a StringIO is not a terminal: plain lines
    return ProgressView(total, concurrency, stream=out, clock=clock), out, clock


def running(lines: list[str]) -> list[int]:
    return [int(re.search(r"running (\d+)", ln).group(1)) for ln in lines]


def step(v: ProgressView, clock: Clock, seconds: float) -> None:
    """Let time pass as Tune's loop does: a step every 0.1 s."""
    for _ in range(int(seconds / 0.1)):
        clock.now += 0.1
        v.on_step_end(iteration=0, trials=[])


def test_a_starting_trial_counts_as_running_though_tune_still_says_pending() -> None:
    v, out, clock = view(total=3)
    a, b = FakeTrial("a"), FakeTrial("b")
    v.on_trial_start(iteration=0, trials=[a, b], trial=a)
    v.on_trial_start(iteration=0, trials=[a, b], trial=b)
    assert v.counts() == {"done": 0, "running": 2, "pending": 1, "failed": 0}
    step(v, clock, SETTLE_S + 0.2)
    assert running(out.getvalue().splitlines()) == [2]


def test_a_reused_actor_handing_over_makes_one_line_and_keeps_two_running() -> None:
    v, out, clock = view(total=4)
    trials = [FakeTrial(i) for i in "abcd"]
    for t in trials[:2]:
        v.on_trial_start(iteration=0, trials=trials, trial=t)
    step(v, clock, REFRESH_S + 1)
    trials[0].status = "RUNNING"
    v.on_trial_complete(iteration=0, trials=trials, trial=trials[0])  # still RUNNING in Tune
    clock.now += 0.05  # the reused actor gets the next trial at once
    v.on_trial_start(iteration=0, trials=trials, trial=trials[2])
    step(v, clock, REFRESH_S + 1)
    lines = out.getvalue().splitlines()
    assert running(lines) == [2, 2]
    assert "done 1/4" in lines[-1] and "pending 1" in lines[-1]


def test_lines_off_a_terminal_come_at_most_every_refresh_interval() -> None:
    v, out, clock = view(total=40, concurrency=1)
    for i in range(20):  # a trial every 0.6 s: far more events than lines
        t = FakeTrial(str(i))
        v.on_trial_start(iteration=0, trials=[], trial=t)
        step(v, clock, 0.3)
        v.on_trial_complete(iteration=0, trials=[], trial=t)
        step(v, clock, 0.3)
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= int(20 * 0.6 / REFRESH_S) + 1


def test_a_retried_trial_goes_back_to_pending_then_fails_once() -> None:
    v, _, _ = view(total=2)
    t = FakeTrial("a")
    v.on_trial_start(iteration=0, trials=[t], trial=t)
    v.on_trial_recover(iteration=0, trials=[t], trial=t)
    assert v.counts() == {"done": 0, "running": 0, "pending": 2, "failed": 0}
    v.on_trial_start(iteration=0, trials=[t], trial=t)
    v.on_trial_error(iteration=0, trials=[t], trial=t)
    assert v.counts() == {"done": 0, "running": 0, "pending": 1, "failed": 1}


def test_the_last_line_gives_the_most_trials_running_at_once() -> None:
    v, out, _ = view(total=3, concurrency=3)
    trials = [FakeTrial(i) for i in "abc"]
    for t in trials:
        v.on_trial_start(iteration=0, trials=trials, trial=t)
    for t in trials:
        v.on_trial_complete(iteration=0, trials=trials, trial=t)
    v.on_experiment_end(trials=trials)
    last = out.getvalue().splitlines()[-1]
    assert "done 3/3 | running 0 | pending 0 | failed 0" in last
    assert "at most 3 running at once" in last


def test_skipped_trials_count_as_failed_not_pending() -> None:
    clock, out = Clock(), io.StringIO()
    v = ProgressView(5, 2, stream=out, skipped=lambda: 2, clock=clock)
    assert v.counts() == {"done": 0, "running": 0, "pending": 3, "failed": 2}


def test_trials_stopped_by_an_interruption_are_not_done() -> None:
    v, _, _ = view(total=3)
    a, b, c = FakeTrial("a"), FakeTrial("b", last_result={}), FakeTrial("c", last_result={})
    for t in (a, b):
        v.on_trial_start(iteration=0, trials=[a, b, c], trial=t)
    v.on_trial_complete(iteration=0, trials=[a, b, c], trial=a)
    v.on_trial_complete(iteration=0, trials=[a, b, c], trial=b)  # Ctrl-C: Tune stops the rest
    v.on_trial_complete(iteration=0, trials=[a, b, c], trial=c)
    assert v.counts() == {"done": 1, "running": 0, "pending": 0, "failed": 0, "stopped": 2}
    assert "failed 0 | stopped 2" in v.line()
