"""MLflow access for the orchestrator and the CLI: experiments, the sweep run, lookups.

Imports mlflow lazily; constructing a Tracker is where the cost is paid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_core import contract as C
from mtl_core.runs import finished_runs, iter_runs
from mtl_sweep.store.runs_read import ClientReader, Reader, SqlReader
from mtl_sweep.store.ui_link import EXPERIMENT_TAGS

if TYPE_CHECKING:
    from mlflow.entities import Run


class Tracker:
    """A thin wrapper over MlflowClient that speaks the run contract."""

    def __init__(self, uri: str) -> None:
        """Check the store (InfraError, exit 3, within seconds), then open a client."""
        from mlflow import MlflowClient

        from mtl_sweep.store.health import check_store

        check_store(uri)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)

    # --- experiments -------------------------------------------------------------------
    def experiment_id(self, name: str, create: bool = False) -> str | None:
        """The experiment's id; with `create`, make it first (artifacts beside a sqlite db)
        and tag it so that the MLflow UI shows it as model training (see ui_link.py)."""
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                if not create:
                    return None
                self.client.restore_experiment(exp.experiment_id)  # names are never reused
            if create:  # an experiment made before the tag existed gets it now
                for key, value in EXPERIMENT_TAGS.items():
                    if key not in exp.tags:
                        self.client.set_experiment_tag(exp.experiment_id, key, value)
            return exp.experiment_id
        if not create:
            return None
        location = None
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri[len("sqlite:///") :])
            location = (db.parent / "mlartifacts" / name).as_uri()
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags=EXPERIMENT_TAGS
            )
        except Exception:
            # Another driver created it first.
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def all_experiment_ids(self) -> list[str]:
        """Every active experiment's id."""
        return [e.experiment_id for e in self.client.search_experiments()]

    # --- runs ------------------------------------------------------------------------------
    def runs(self, experiment_ids: list[str], filter_string: str = "") -> Iterator[Run]:
        """Every run matching the filter, following search_runs' page tokens."""
        return iter_runs(self.client, experiment_ids, filter_string)

    @cached_property
    def reader(self) -> Reader:
        """The fast reader of finished work: plain SQL where the store allows it, else this
        tracker's client (see runs_read.py)."""
        return SqlReader.open(self.uri) or ClientReader(self.uri, self.client)

    def finished_job_keys(self, keys: list[str]) -> set[str]:
        """Which pretraining-job keys have a FINISHED run in any experiment."""
        if not keys:
            return set()
        experiments = list(self.reader.experiments())
        return self.reader.finished_keys(experiments, C.KIND_PRETRAIN) & set(keys)

    def finished_keys(self, experiment: str) -> set[str]:
        """Keys of trials and pretraining jobs with a FINISHED run in the experiment."""
        exp_id = self.experiment_id(experiment)
        if exp_id is None:
            return set()
        return self.reader.finished_keys([exp_id], None)

    def finished_runs(
        self, key: str, kind: str, experiment_ids: list[str] | None = None
    ) -> list[Run]:
        """FINISHED runs of `kind` with this key, newest first; every experiment by default
        (pretraining jobs are shared across sweeps)."""
        return finished_runs(self.client, key, kind, experiment_ids)

    def finished_run(
        self, key: str, kind: str, experiment_ids: list[str] | None = None
    ) -> Run | None:
        """The newest FINISHED run with this key, or None."""
        runs = self.finished_runs(key, kind, experiment_ids)
        return runs[0] if runs else None

    def sweep_run(self, experiment_id: str, sweep: str) -> str:
        """The sweep's parent run id: reused when it exists, created otherwise."""
        filt = f"tags.`{C.KIND}` = '{C.KIND_SWEEP}' and tags.`{C.SWEEP}` = '{sweep}'"
        found = sorted(self.runs([experiment_id], filt), key=lambda r: r.info.start_time)
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            experiment_id,
            run_name=sweep,
            tags={C.KIND: C.KIND_SWEEP, C.SWEEP: sweep},
        )
        return run.info.run_id

    def children(self, experiment_id: str, parent: str, statuses: tuple[str, ...]) -> list[Run]:
        """Runs under the parent run `parent` whose status is one of `statuses`."""
        # search_runs has no OR: filter the parent's runs by status here.
        filt = f"tags.`{C.PARENT}` = '{parent}'"
        return [r for r in self.runs([experiment_id], filt) if r.info.status in statuses]

    def close_stale(self, experiment_id: str, sweep: str) -> int:
        """Mark child runs left RUNNING by a dead driver as KILLED; returns how many.

        Only one driver may run a given sweep at a time (docs/cli.md, `mtl-sweep run`).
        """
        filt = f"attributes.status = 'RUNNING' and tags.`{C.SWEEP}` = '{sweep}'"
        n = 0
        for run in self.runs([experiment_id], filt):
            if run.data.tags.get(C.KIND) == C.KIND_SWEEP:
                continue
            self.client.set_tag(run.info.run_id, C.ERROR, "killed: its driver stopped")
            self.client.set_terminated(run.info.run_id, "KILLED", int(time.time() * 1000))
            n += 1
        return n
