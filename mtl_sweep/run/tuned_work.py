"""A tuned sweep's work as data: each cell's search state, and what is already known.

Built by `mtl_sweep.run.tuned.tuned_todo` from MLflow; run by
`mtl_sweep.run.tuned_searcher.TunedSearcher`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mtl_core import contract as C
from mtl_core.runs import iter_runs
from mtl_sweep.expand import PretrainJob, Trial
from mtl_sweep.search.cells import SearchCell, SearchTrial
from mtl_sweep.search.select import SearchResult


@dataclass
class CellWork:
    """One cell's search as this invocation finds and runs it."""

    cell: SearchCell
    pending: deque[SearchTrial]  # random: samples still to run, in sample order
    to_draw: int  # optuna: samples still to ask the searcher for
    results: list[SearchResult]  # its finished search runs (earlier runs', then this one's)
    live: int = 0  # search trials running now
    incomplete: bool = False  # a search trial was interrupted: its finals wait for a rerun
    next_index: int = 0  # optuna: the next sample's index

    @property
    def searched(self) -> bool:
        """True when no sample is left to start."""
        return not self.pending and self.to_draw == 0


@dataclass
class TunedWork:
    """What a tuned sweep's invocation runs (the runner's `Work`, for a search)."""

    jobs: list[PretrainJob]
    trials: list  # search trials to run, then final trials already known
    skipped: list  # search and final trials already FINISHED
    cells: list[CellWork]
    finals: list[tuple[Trial, SearchResult]]  # known now: final trial, the winner it retrains
    done: set[str]  # keys with a FINISHED run
    unsearchable: list[tuple[SearchCell, str]] = field(default_factory=list)  # cell, why
    winners: dict[str, SearchResult] = field(default_factory=dict)  # cell id -> its winner


def supersede_old_finals(client: Any, experiment_id: str, winners: dict[str, SearchResult]):
    """A cell whose winner changed (more samples, a finished search) retrains it; the final
    runs of the old winner are superseded (KILLED with mtl_sweep.superseded_by, as after
    --rerun), so the tables count each cell's current winner only. Returns how many."""
    n = 0
    filt = f"attributes.status = 'FINISHED' and tags.`{C.KIND}` = '{C.KIND_TRIAL}'"
    for run in iter_runs(client, [experiment_id], filt):
        best = winners.get(run.data.tags.get(C.CELL, ""))
        if best is not None and run.data.tags.get(C.TUNED_FROM) != best.run_id:
            client.set_tag(run.info.run_id, C.SUPERSEDED_BY, best.run_id)
            client.set_terminated(run.info.run_id, "KILLED")
            n += 1
    return n


def no_winner(cell: SearchCell) -> str:
    return f"no search trial of cell {cell.name} ran the full budget with a finite objective"
