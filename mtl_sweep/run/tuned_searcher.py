"""The Ray Tune Searcher of a tuned sweep: jobs, then the cells' searches, then finals.

Cells take turns, so every cell's search progresses alike; a cell's final runs are
released once its last search trial has ended (see mtl_sweep/run/tuned.py).
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from dataclasses import replace
from typing import Any

import click
from ray.tune.search import Searcher

from mtl_core import contract as C
from mtl_core.trial import TUNE_CONFIG_KEY, TrialRequest
from mtl_sweep.expand import Trial
from mtl_sweep.run.cell_scheduler import CellScheduler, make_scheduler
from mtl_sweep.run.requests import RunContext, job_request, trial_request
from mtl_sweep.run.tuned_work import CellWork, TunedWork, no_winner, supersede_old_finals
from mtl_sweep.search.cells import SearchTrial
from mtl_sweep.search.rounds import planned_rounds
from mtl_sweep.search.select import SearchResult, winner
from mtl_sweep.search.space import plain, tune_space, values_json


class TunedSearcher(Searcher):
    """A Ray Tune Searcher over pretraining jobs, the cells' searches and their finals."""

    def __init__(self, work: TunedWork, ctx: RunContext) -> None:
        super().__init__()
        search = ctx.spec.search
        assert search is not None
        self.ctx, self.search, self.done = ctx, search, work.done
        self.jobs = deque(job_request(j, ctx) for j in work.jobs)
        self.jobs_left = {j.key for j in work.jobs}  # pending or running
        self.finals = deque(self._final_request(t, w) for t, w in work.finals)
        self.cells = [c for c in work.cells if not c.searched]
        self.live: dict[str, tuple[TrialRequest, CellWork | None]] = {}
        self.last: dict[str, dict[str, Any]] = {}  # trial id -> its last round's report
        self.skipped: list[tuple[TrialRequest, str]] = [
            (trial_request(cell.first, ctx), why) for cell, why in work.unsearchable
        ]
        self.stopped_runs: list[tuple[TrialRequest, str]] = []  # request, MLflow run id
        self._turn = 0
        self.winners = dict(work.winners)  # cell id -> its winner, once searched
        self._optuna = {c.cell.id: self._optuna_search(c) for c in self.cells if c.to_draw}
        rounds = {c.cell.id: planned_rounds(c.cell.first.config) for c in self.cells}

        def cell_of(trial: Any) -> str | None:
            request = trial.config.get(TUNE_CONFIG_KEY)
            if request is None or request.config.kind != C.KIND_SEARCH:
                return None
            return request.tags[C.CELL]

        self.scheduler = CellScheduler(
            lambda cell: make_scheduler(search.scheduler, rounds.get(cell)), cell_of
        )
        n_final = sum(len(c.cell.seeds) for c in self.cells)
        searches = sum(len(c.pending) + c.to_draw for c in self.cells)
        self.total = len(self.jobs) + len(self.finals) + searches + n_final

    # --- requests ------------------------------------------------------------------------
    def _search_request(self, trial: SearchTrial) -> TrialRequest:
        base = trial_request(Trial(trial.config), self.ctx)
        tags = {
            **base.tags,
            C.CELL: trial.cell,
            C.SAMPLE: str(trial.index),
            C.SEARCH_VALUES: values_json(trial.values),
        }
        execution = replace(base.execution, objective=self.search.objective)
        return replace(base, name=trial.name, tags=tags, execution=execution)

    def _final_request(self, trial: Trial, best: SearchResult) -> TrialRequest:
        base = trial_request(trial, self.ctx)
        tags = {**base.tags, C.CELL: best.cell, C.TUNED_FROM: best.run_id}
        execution = replace(base.execution, objective=self.search.objective)
        return replace(base, tags=tags, execution=execution)

    def _optuna_search(self, work: CellWork):
        from ray.tune.search.optuna import OptunaSearch  # the optuna extra

        searcher = OptunaSearch(
            space=tune_space(self.search),
            metric=C.SEARCH_OBJECTIVE,
            mode="max",
            seed=self.search.seed,
        )
        for r in work.results:  # what earlier runs learnt: stopped runs count as pruned
            if r.objective is not None:
                searcher.add_evaluated_point(r.values, r.objective, pruned=r.stopped)
        return searcher

    # --- Searcher API --------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """A pretraining job, a cell's released final run, or the next cell's next sample
        (cells take turns); None to wait; FINISHED when nothing is left."""
        if self.jobs:
            return self._hand_out(trial_id, self.jobs.popleft(), None)
        if self.finals:
            return self._hand_out(trial_id, self.finals.popleft(), None)
        n = len(self.cells)
        for i in range(n):
            work = self.cells[(self._turn + i) % n]
            if work.searched or work.cell.first.pretrain_key in self.jobs_left:
                continue
            self._turn = (self._turn + i + 1) % n
            work.live += 1
            return self._hand_out(trial_id, self._search_request(self._next(work, trial_id)), work)
        if self.live or any(not c.searched for c in self.cells):
            return None
        return Searcher.FINISHED

    def _next(self, work: CellWork, trial_id: str) -> SearchTrial:
        if work.pending:
            return work.pending.popleft()
        config = self._optuna[work.cell.id].suggest(trial_id)
        work.to_draw -= 1
        work.next_index += 1
        values = {k: plain(v) for k, v in config.items()}
        return work.cell.sample(work.next_index - 1, values)

    def _hand_out(self, trial_id: str, request: TrialRequest, work: CellWork | None) -> dict:
        self.live[trial_id] = (request, work)
        return {TUNE_CONFIG_KEY: request}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Keep each trial's last report (its steps so far, its run id)."""
        self.last[trial_id] = result
        work = self.live.get(trial_id, (None, None))[1]
        if work is not None and work.cell.id in self._optuna:
            self._optuna[work.cell.id].on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Release what waited on a job; record a search trial; release a searched cell's
        final runs."""
        request, work = self.live.pop(trial_id, (None, None))
        if request is None:
            return
        if request.config.is_pretrain:
            self._job_done(request, error)
            return
        if work is None:
            return
        work.live -= 1
        last = {**self.last.pop(trial_id, {}), **(result or {})}
        stopped = trial_id in self.scheduler.stopped and not error
        if work.cell.id in self._optuna:
            self._optuna[work.cell.id].on_trial_complete(trial_id, last, error)
        if not (error or stopped or last.get("final")):
            work.incomplete = True  # interrupted: it resumes on the next run
        else:
            work.results.append(self._result(request, last, stopped, error))
            if stopped:
                self.stopped_runs.append((request, str(last.get("run_id", ""))))
        if work.searched and work.live == 0:
            self._release(work)

    def _result(self, request: TrialRequest, last: dict, stopped: bool, error: bool):
        final = bool(last.get("final")) and not error
        return SearchResult(
            cell=request.tags[C.CELL],
            index=int(request.tags[C.SAMPLE]),
            key=request.key,
            run_id=str(last.get("run_id", "")),
            values=json.loads(request.tags[C.SEARCH_VALUES]),
            objective=float(last[C.SEARCH_BEST]) if final and C.SEARCH_BEST in last else None,
            steps=int(last.get(C.SEARCH_STEPS, 0)),
            stopped=stopped,
        )

    def _job_done(self, request: TrialRequest, error: bool) -> None:
        self.jobs_left.discard(request.key)
        if not error:
            return
        reason = f"its pretraining job {request.key} ({request.name}) failed"
        for work in self.cells:
            if work.cell.first.pretrain_key == request.key and not work.searched:
                work.pending.clear()
                work.to_draw = 0
                work.incomplete = True
                self.skipped.append((trial_request(work.cell.first, self.ctx), reason))
        self.finals = deque(
            r
            for r in self.finals
            if not (r.config.pretrain and r.config.pretrain.key == request.key)
        )

    def _release(self, work: CellWork) -> None:
        """The cell's final runs: its best full-budget sample, retrained with every seed."""
        if work.incomplete:
            return
        best = winner(work.results)
        if best is None:
            self.skipped.append((trial_request(work.cell.first, self.ctx), no_winner(work.cell)))
            return
        self.winners[work.cell.id] = best
        for trial in work.cell.finals(best.values):
            if trial.key not in self.done:
                self.finals.append(self._final_request(trial, best))

    # --- after Tune ----------------------------------------------------------------------
    def settle(self, outcome: Any, ctx: RunContext) -> None:
        """Runs stopped early by their cell's scheduler end FINISHED with the tag
        mtl_sweep.stopped_early: not failures, never rerun, never in the tables. Tune saw
        them stop before their final report (as an interrupted trial), so they leave
        `outcome.interrupted` for `outcome.finished`; their resume checkpoints go."""
        from mlflow import MlflowClient

        client = MlflowClient(ctx.tracking_uri)
        old = supersede_old_finals(client, ctx.experiment_id, self.winners)
        if old:
            click.echo(
                f"{old} final run(s) of an earlier winner superseded by their cell's new one"
            )
        if not self.stopped_runs:
            return
        keys = {r.key for r, _ in self.stopped_runs}
        outcome.interrupted = [r for r in outcome.interrupted if r.key not in keys]
        for request, run_id in self.stopped_runs:
            if run_id:
                client.set_tag(run_id, C.STOPPED_EARLY, "true")
                if C.ERROR in client.get_run(run_id).data.tags:
                    client.delete_tag(run_id, C.ERROR)  # the stop's SystemExit is no error
                client.set_terminated(run_id, "FINISHED")
            outcome.finished.append(request)
            shutil.rmtree(ctx.checkpoint_dir(request.key), ignore_errors=True)
        click.echo(
            f"{len(self.stopped_runs)} search trial(s) stopped early by their cell's "
            f"{self.search.scheduler.name}"
        )
