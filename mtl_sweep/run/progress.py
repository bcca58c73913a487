"""One concise live view of a sweep: counts, elapsed, ETA and the best metrics so far."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ray.tune import Callback

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_core.trial import TUNE_CONFIG_KEY

REFRESH_S = 5.0  # on a non-terminal, print at most one line this often (plus on events)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressView(Callback):
    """A Tune callback that keeps one status line up to date.

    On a terminal the line is redrawn in place; elsewhere (CI, files) a line is printed
    when something finishes or fails, and at most every REFRESH_S seconds otherwise.
    """

    def __init__(
        self,
        total: int,
        concurrency: int,
        stream: TextIO | None = None,
        skipped: Callable[[], int] | None = None,
    ) -> None:
        self.total = total
        self.concurrency = max(concurrency, 1)
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.started: dict[str, float] = {}  # trial id -> start time
        self.durations: list[float] = []
        self.done = self.failed = self.running = 0
        self.best: dict[str, tuple[float, str]] = {}  # metric -> (value, run name)
        self.last_print = 0.0
        # Trials the orchestrator will never schedule (their pretraining job failed).
        self.skipped: Callable[[], int] = skipped or (lambda: 0)

    # --- Tune hooks: counts come from the trials' own statuses --------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started.setdefault(trial.trial_id, time.monotonic())
        self._count(trials)
        self.render()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info):
        if result.get("final"):
            self._note_best(trial, result)
        self._count(trials)
        self.render(event=False)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, trials, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, trials, failed=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._count(trials)
        self.render(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    # --- state ---------------------------------------------------------------------------
    def _count(self, trials: list) -> None:
        status = [t.status for t in trials]
        self.running = status.count("RUNNING")
        self.done = status.count("TERMINATED")
        self.failed = status.count("ERROR")

    def _finish(self, trial: Any, trials: list, failed: bool) -> None:
        started = self.started.pop(trial.trial_id, None)
        if started is not None:
            self.durations.append(time.monotonic() - started)
        self._count(trials)
        if trial.status == "RUNNING":  # Tune calls back before it updates the status
            self.running -= 1
            if failed:
                self.failed += 1
            else:
                self.done += 1
        self.render(force=True)

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

    def line(self) -> str:
        """The status line."""
        elapsed = time.monotonic() - self.start
        skipped = self.skipped()
        finished = self.done + self.failed + skipped
        pending = max(self.total - finished - self.running, 0)
        parts = [
            f"[{_clock(elapsed)}] done {self.done}/{self.total}",
            f"running {self.running}",
            f"pending {pending}",
            f"failed {self.failed + skipped}",
        ]
        if self.durations and (pending or self.running):
            mean = sum(self.durations) / len(self.durations)
            remaining = (pending + self.running / 2) * mean / self.concurrency
            parts.append(f"ETA {_clock(remaining)}")
        best = []
        for name, (value, _) in self.best.items():
            metric = next(m for m in PRIMARY_METRIC.values() if m.name == name)
            shown = f"{100 * value:.1f}%" if metric.percent else f"{value:.2f}"
            best.append(f"{name} {shown}")
        if best:
            parts.append("best " + ", ".join(best))
        return " | ".join(parts)

    def render(self, force: bool = False, event: bool = True) -> None:
        """Draw the line (in place on a terminal)."""
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
        elif force or (event and now - self.last_print >= REFRESH_S):
            self.stream.write(self.line() + "\n")
        else:
            return
        self.last_print = now
        self.stream.flush()
