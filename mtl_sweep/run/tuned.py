"""Running a tuned sweep: each cell's search, then its final runs, on one Ray Tune run.

What is left to do is read from MLflow first (`tuned_todo`): the samples of each cell
without a FINISHED search run (a run its scheduler stopped early is FINISHED too, and
never rerun), and, for a cell whose search is complete, its final runs not yet FINISHED.
`TunedSearcher` then hands out pretraining jobs, the cells' search trials in turn (so
every cell progresses alike), and a cell's final runs once its last search trial ended,
the way trials wait for a pretraining job. Per cell, `CellScheduler` gives the search
trials their own ASHA or HyperBand brackets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import click

from mtl_sweep.expand import Plan
from mtl_sweep.run.requests import RunContext
from mtl_sweep.run.tuned_searcher import TunedSearcher
from mtl_sweep.run.tuned_work import CellWork, TunedWork, no_winner
from mtl_sweep.search.cells import search_cells
from mtl_sweep.search.select import SearchResult, finished_search_results, winner
from mtl_sweep.store.tracker import Tracker


class TunedRun(TunedWork):
    """The runner's `Work` for a tuned sweep: its Tune searcher, scheduler and settling."""

    def tune_parts(self, ctx: RunContext) -> tuple[Any, Any, int]:
        """The searcher, the scheduler and an upper bound of the Tune trials to run."""
        import os

        searcher = TunedSearcher(self, ctx)
        # Tune makes trials only while fewer than this many wait; HyperBand sizes its
        # brackets from the trials it has been given, and halves a bracket once they all
        # reached its rung: all of a cell's samples must exist before the first gets there.
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(searcher.total, 1)))
        return searcher, searcher.scheduler, searcher.total

    def settle(self, searcher: Any, outcome: Any, ctx: RunContext) -> None:
        """After Tune: the runs stopped early end FINISHED (see TunedSearcher.settle)."""
        searcher.settle(outcome, ctx)

    def has_work(self) -> bool:
        """Whether anything is left: jobs, known trials, or samples optuna has yet to draw."""
        return bool(self.jobs or self.trials or any(c.to_draw for c in self.cells))


def tuned_todo(
    tracker: Tracker, plan: Plan, experiment: str, exp_id: str | None, rerun: bool
) -> TunedRun:
    """Each cell's samples and final runs not FINISHED yet (everything with --rerun)."""
    search = plan.spec.search
    assert search is not None
    done = set() if rerun or exp_id is None else tracker.finished_keys(experiment)
    prior = {} if rerun or exp_id is None else finished_search_results(tracker.client, exp_id)
    cells, finals, skipped, todo, unsearchable = [], [], [], [], []
    winners: dict[str, SearchResult] = {}
    for cell in search_cells(plan):
        if search.algorithm == "random":
            samples = cell.samples()
            results = [replace(prior[s.key], index=s.index) for s in samples if s.key in prior]
            work = CellWork(cell, deque(s for s in samples if s.key not in prior), 0, results)
            skipped += [s for s in samples if s.key in prior]
        else:  # adaptive: what it drew before is what it learns from
            results = sorted(
                (r for r in prior.values() if r.cell == cell.id), key=lambda r: r.index
            )
            more = max(0, search.samples - len(results))
            work = CellWork(cell, deque(), more, results, next_index=len(results))
            skipped += [cell.sample(r.index, r.values) for r in results]
        todo += list(work.pending)
        cells.append(work)
        if work.searched:
            best = winner(work.results)
            if best is None:
                unsearchable.append((cell, no_winner(cell)))
                continue
            winners[cell.id] = best
            for final in cell.finals(best.values):
                (skipped if final.key in done else finals).append(
                    final if final.key in done else (final, best)
                )
    needed = {c.cell.first.pretrain_key for c in cells if not c.searched}
    needed |= {f.pretrain_key for f, _ in finals}
    done_jobs = set() if rerun else tracker.finished_job_keys([j.key for j in plan.jobs])
    jobs = [j for j in plan.jobs if j.key in needed and j.key not in done_jobs]
    _print_search(plan, cells, todo, finals, skipped)
    return TunedRun(
        jobs, todo + [f for f, _ in finals], skipped, cells, finals, done, unsearchable, winners
    )


def _print_search(plan, cells, todo, finals, skipped) -> None:
    search = plan.spec.search
    open_cells = sum(1 for c in cells if not c.searched)
    to_search = len(todo) + sum(c.to_draw for c in cells)
    click.echo(
        f"search: {len(cells)} cell(s) x {search.samples} sample(s) ({search.algorithm}, "
        f"{search.scheduler.name}, objective {search.objective}): {to_search} search trial(s) "
        f"to run in {open_cells} cell(s), {len(finals)} final trial(s) ready, "
        f"{len(skipped)} search/final trial(s) already done; the final trials of the cells "
        "still searching run after their search"
    )
