"""One Ray Tune scheduler per cell behind one TrialScheduler: early stopping within a cell.

A single-task trial never competes with a four-task one: each cell's trials get their own
ASHA (`AsyncHyperBandScheduler`) or synchronous HyperBand (`HyperBandScheduler`) instance,
made on the cell's first trial. Trials without a cell (pretraining jobs, final runs) run
first-in first-out. This class only routes; the halving is Ray's.
"""

from __future__ import annotations

from collections.abc import Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, HyperBandScheduler, TrialScheduler

from mtl_core import contract as C
from mtl_sweep.search.rounds import ROUNDS_UNKNOWN
from mtl_sweep.spec.search import SchedulerSpec

TIME_ATTR = "rounds_done"  # reported by every round; survives a restart from our checkpoint


def make_scheduler(spec: SchedulerSpec, rounds: int | None) -> TrialScheduler:
    """Ray's scheduler for one cell. ASHA's max_t sits half a round under the last round,
    so no rung falls on it: a trial that trained the full budget is never stopped before
    its final (test) report. (grace_rounds is ASHA's; HyperBand sizes its brackets.)"""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    last = rounds or ROUNDS_UNKNOWN
    common = {"time_attr": TIME_ATTR, "metric": C.SEARCH_OBJECTIVE, "mode": "max"}
    if spec.name == "asha":
        return AsyncHyperBandScheduler(
            max_t=last - 0.5,
            grace_period=spec.grace_rounds,
            reduction_factor=spec.reduction_factor,
            stop_last_trials=False,
            **common,
        )
    if spec.name == "hyperband":
        # Its brackets are sized from max_t; the last rung is the full budget, where
        # stop_last_trials=False lets the survivors reach their final report.
        return HyperBandScheduler(
            max_t=last, reduction_factor=spec.reduction_factor, stop_last_trials=False, **common
        )
    return FIFOScheduler()


class CellScheduler(TrialScheduler):
    """Routes each trial to its cell's scheduler; records which trials those stopped."""

    def __init__(
        self, make: Callable[[str], TrialScheduler], cell_of: Callable[[Trial], str | None]
    ) -> None:
        super().__init__()
        self._make, self._cell_of = make, cell_of
        self._cells: dict[str, TrialScheduler] = {}
        self._fifo = FIFOScheduler()
        self.stopped: set[str] = set()  # trial ids a cell's scheduler stopped early

    def _for(self, trial: Trial) -> TrialScheduler:
        cell = self._cell_of(trial)
        if cell is None:
            return self._fifo
        if cell not in self._cells:
            self._cells[cell] = self._make(cell)
        return self._cells[cell]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        """Each cell's scheduler was given its metric and mode when it was made."""
        return True

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        self._for(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._for(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        # HyperBand stops the paused losers of a rung through the controller.
        controller = _Recording(tune_controller, self.stopped)
        action = self._for(trial).on_trial_result(controller, trial, result)
        if action == TrialScheduler.STOP and not result.get("final"):
            self.stopped.add(trial.trial_id)
        return action

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self._for(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self._for(trial).on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        """HyperBand cells pick their own (they resume paused trials); everything else
        runs in the order it was suggested."""
        for scheduler in self._cells.values():
            if isinstance(scheduler, HyperBandScheduler):
                trial = scheduler.choose_trial_to_run(tune_controller)
                if trial is not None:
                    return trial
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PENDING and not isinstance(
                self._for(trial), HyperBandScheduler
            ):
                return trial
        return None

    def debug_string(self) -> str:
        return f"CellScheduler: {len(self._cells)} cell(s), {len(self.stopped)} stopped early"


class _Recording:
    """The Tune controller as a cell's scheduler sees it: a stop it asks for is recorded."""

    def __init__(self, controller, stopped: set[str]) -> None:
        self._controller, self._stopped = controller, stopped

    def stop_trial(self, trial: Trial, *args, **kwargs):
        self._stopped.add(trial.trial_id)
        return self._controller.stop_trial(trial, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._controller, name)
