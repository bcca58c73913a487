"""One concise live view of a sweep: counts, elapsed, ETA and the best metrics so far.

The counts come from Tune's trial events, not from the trials' statuses: Tune calls
`on_trial_start` *before* it marks the trial RUNNING (for a fresh actor and for a reused
one alike), so counting statuses there missed the trial that was starting. A trial counts
as running from `on_trial_start` (its actor has it and is entering the trainable) until
it completes, fails, or goes back to pending for a retry (`on_trial_recover`). That
interval holds the trial's MLflow run, which starts once the trainable has imported
torch and ends before the trainable returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ray.tune import Callback

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_core.trial import TUNE_CONFIG_KEY

REFRESH_S = 5.0  # off a terminal, at most one line this often
SETTLE_S = 0.5  # off a terminal, wait this long after an event: a trial that ends and the
# next one that starts on its actor make one line, not two
TTY_TICK_S = 1.0  # on a terminal, redraw at least this often (the clock moves)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressView(Callback):
    """A Tune callback that keeps one status line up to date.

    On a terminal the line is redrawn in place. Elsewhere (CI, files) a line is printed
    when the counts change, at most every REFRESH_S seconds, and a last one at the end
    that also gives the most trials that ran at once.
    """

    def __init__(
        self,
        total: int,
        concurrency: int,
        stream: TextIO | None = None,
        skipped: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.concurrency = max(concurrency, 1)
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.clock = clock
        self.start = clock()
        self.running: dict[str, float] = {}  # trial id -> when it started on its actor
        self.peak = 0  # the most trials running at once
        self.durations: list[float] = []
        self.done = self.failed = self.stopped = 0  # stopped: interrupted, never finished
        self.best: dict[str, tuple[float, str]] = {}  # metric -> (value, run name)
        self.last_print = -float("inf")
        self.last_event = self.start
        self.dirty = False  # counts changed since the last line printed
        self.dirty_since = self.start
        # Trials the orchestrator will never schedule (their pretraining job failed).
        self.skipped: Callable[[], int] = skipped or (lambda: 0)

    # --- Tune hooks ------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running[trial.trial_id] = self.clock()
        self.peak = max(self.peak, len(self.running))
        self._changed()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info):
        if result.get("final"):
            self._note_best(trial, result)
        self._tick()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Back to pending: Tune restarts it (from its checkpoint) and calls on_trial_start.
        self.running.pop(trial.trial_id, None)
        self._changed()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Tune also "completes" the trials it stops on Ctrl-C: done only after the
        # trainable's final report.
        final = bool((getattr(trial, "last_result", None) or {}).get("final"))
        self._finish(trial, "done" if final else "stopped")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "failed")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._tick()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.running.clear()
        self.render(final=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    # --- state -----------------------------------------------------------------------------
    def _finish(self, trial: Any, outcome: str) -> None:
        started = self.running.pop(trial.trial_id, None)
        if started is not None and outcome != "stopped":
            self.durations.append(self.clock() - started)
        if outcome == "failed":
            self.failed += 1
        elif outcome == "done":
            self.done += 1
        else:
            self.stopped += 1
        self._changed()

    def _changed(self) -> None:
        now = self.clock()
        if not self.dirty:
            self.dirty, self.dirty_since = True, now
        self.last_event = now
        if self.tty:
            self.render()

    def _tick(self) -> None:
        """Print a pending change once it has settled (or events kept coming for
        REFRESH_S) and the last line is old enough."""
        now = self.clock()
        if self.tty:
            if now - self.last_print >= TTY_TICK_S:
                self.render()
        elif self.dirty and now - self.last_print >= REFRESH_S:
            settled = now - self.last_event >= SETTLE_S
            if settled or now - self.dirty_since >= REFRESH_S:
                self.render()

    def _note_best(self, trial: Any, result: dict) -> None:
        request = (trial.config or {}).get(TUNE_CONFIG_KEY)
        if request is None or request.config.is_pretrain:
            return
        for metric in PRIMARY_METRIC.values():
            value = result.get(f"{C.TEST}{metric.name}")
            if value is None:
                continue
            best = self.best.get(metric.name)
            better = best is None or (
                value > best[0] if metric.higher_is_better else value < best[0]
            )
            if better:
                self.best[metric.name] = (float(value), request.name)

    # --- output ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """done, running, pending and failed (trials skipped after a failed job included),
        and stopped (by an interruption) when there are any."""
        failed = self.failed + self.skipped()
        running = len(self.running)
        pending = max(self.total - self.done - failed - running - self.stopped, 0)
        n = {"done": self.done, "running": running, "pending": pending, "failed": failed}
        return {**n, "stopped": self.stopped} if self.stopped else n

    def line(self, final: bool = False) -> str:
        """The status line; the final one also says how many trials ran at once, at most."""
        n = self.counts()
        parts = [
            f"[{_clock(self.clock() - self.start)}] done {n['done']}/{self.total}",
            f"running {n['running']}",
            f"pending {n['pending']}",
            f"failed {n['failed']}",
        ]
        if "stopped" in n:
            parts.append(f"stopped {n['stopped']}")
        if self.durations and (n["pending"] or n["running"]):
            mean = sum(self.durations) / len(self.durations)
            remaining = (n["pending"] + n["running"] / 2) * mean / self.concurrency
            parts.append(f"ETA {_clock(remaining)}")
        if final:
            parts.append(f"at most {self.peak} running at once")
        best = []
        for name, (value, _) in self.best.items():
            metric = next(m for m in PRIMARY_METRIC.values() if m.name == name)
            shown = f"{100 * value:.1f}%" if metric.percent else f"{value:.2f}"
            best.append(f"{name} {shown}")
        if best:
            parts.append("best " + ", ".join(best))
        return " | ".join(parts)

    def render(self, final: bool = False) -> None:
        """Draw the line now: in place on a terminal, as a new line elsewhere."""
        text = self.line(final)
        self.stream.write("\r\033[K" + text if self.tty else text + "\n")
        self.stream.flush()
        self.last_print, self.dirty = self.clock(), False
