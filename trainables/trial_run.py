"""One trial's MLflow run, following the run contract (docs/design.md).

Uses MlflowClient with explicit run ids (never the fluent active-run state), because a
reused Ray actor runs many trials in one process. Every call retries transient store
faults with backoff (trainables/store_retry.py).
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mtl_core import contract as C
from mtl_core.resume import run_is_gone
from mtl_core.runs import finished_runs
from mtl_core.trial import TrialRequest
from trainables.store_retry import GIVE_UP_S, RetryingClient, bound_http, retrying

BATCH = 100  # MLflow's log_batch takes at most 100 params or tags per call
ERROR_CHARS = 4000  # the error tag keeps the traceback's tail, ending with "Type: message"
SYSTEM_METRICS_INTERVAL_S = 2.0
FAIL_GIVE_UP_S = 30.0  # recording a failure waits less: the store may be what failed
STOPPED = "stopped before its end; resumes from its last checkpoint on the next run"


def error_text(exc: BaseException) -> str:
    """The traceback's tail; its last line is `Type: message`, like Python prints it."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text[-ERROR_CHARS:]


class RunGone(LookupError):
    """The run a checkpoint continues is not in the store (a new store, or deleted)."""


def create_once(
    client: Any,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    give_up_s: float = GIVE_UP_S,
) -> str:
    """Create the trial's run exactly once, through transient store faults; returns its id.

    A create_run whose answer is lost (the server created the run, then the connection
    dropped) would make a second run on a blind retry. Each run carries a fresh
    `mtl_sweep.attempt` token, and a retry first looks for a run with it.
    """
    token = uuid.uuid4().hex
    tags = {**tags, C.ATTEMPT: token}
    tries = 0

    def create() -> str:
        nonlocal tries
        tries += 1
        if tries > 1:
            found = client.search_runs(
                [experiment_id], f"tags.`{C.ATTEMPT}` = '{token}'", max_results=1
            )
            if found:
                return found[0].info.run_id
        return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    return retrying(create, give_up_s)()


class TrialRun:
    """Create or resume a run, log to it, and end it FINISHED, FAILED or KILLED.

    Every call gives up on a store that stays unreachable for `give_up_s`, MLflow's own
    HTTP retries included (trainables/store_retry.py).
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        name: str,
        tags: Mapping[str, str],
        resume_run_id: str | None = None,
        give_up_s: float = GIVE_UP_S,
    ) -> None:
        """Raises RunGone when `resume_run_id` is not a live run of the experiment."""
        from mlflow import MlflowClient

        bound_http(give_up_s)
        self.uri = tracking_uri
        raw = MlflowClient(tracking_uri=tracking_uri)
        self.client = RetryingClient(raw, give_up_s)
        self._quick = RetryingClient(raw, min(give_up_s, FAIL_GIVE_UP_S))
        self.experiment_id = experiment_id
        if resume_run_id:
            self.run_id, self.resumed = resume_run_id, True
            self._resume(resume_run_id)
        else:
            self.run_id = create_once(raw, experiment_id, name, tags, give_up_s)
            self.resumed = False

    def _resume(self, run_id: str) -> None:
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:
            if run_is_gone(exc):
                raise RunGone(run_id) from exc
            raise
        if run.info.lifecycle_stage == "deleted" or run.info.experiment_id != self.experiment_id:
            raise RunGone(run_id)
        self.client.update_run(run_id, status="RUNNING")
        if C.ERROR in run.data.tags:
            self.client.delete_tag(run_id, C.ERROR)  # a retry clears the old error

    def log_params(self, params: Mapping[str, str]) -> None:
        """Log params once (a resumed run already has them)."""
        from mlflow.entities import Param

        if self.resumed:
            return
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set several tags."""
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, tags=items[i : i + BATCH])

    def log_metrics(
        self, metrics: Mapping[str, float], step: int, timestamp_ms: int | None = None
    ) -> None:
        """Log metrics at `step` (the epoch) in one call."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_missing(
        self, metrics: Mapping[str, float], step: int, timestamp_ms: int | None = None
    ) -> int:
        """Log those of `metrics` the run has no value of at `step` yet; returns how many.

        A resumed attempt replays what an earlier one may or may not have logged before it
        died: each key keeps one value per step.
        """
        missing = {
            k: v
            for k, v in metrics.items()
            if all(m.step != step for m in self.client.get_metric_history(self.run_id, k))
        }
        if missing:
            self.log_metrics(missing, step, timestamp_ms)
        return len(missing)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store `text` as an artifact file."""
        self.client.log_text(self.run_id, text, artifact_file)

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        """Store a local file as an artifact."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    @contextmanager
    def system_metrics(self):
        """Record CPU, memory (and GPU, where pynvml sees one) as system/* metrics."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=SYSTEM_METRICS_INTERVAL_S,
            resume_logging=self.resumed,
            tracking_uri=self.uri,
        )
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()

    def finish(self, key: str, kind: str) -> None:
        """End FINISHED; an older FINISHED run of the same key (from --rerun) is superseded."""
        # A pretraining job counts in every experiment (sweeps share it), a trial in its own.
        scope = None if kind == C.KIND_PRETRAIN else [self.experiment_id]
        for old in finished_runs(self.client, key, kind, scope):
            if old.info.run_id != self.run_id:
                self.client.set_tag(old.info.run_id, C.SUPERSEDED_BY, self.run_id)
                self.client.set_terminated(old.info.run_id, "KILLED")
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, exc: BaseException) -> None:
        """End FAILED with the error text as tag mtl_sweep.error. Never raises."""
        self._end("FAILED", error_text(exc))

    def stop(self) -> None:
        """End KILLED: Ray Tune stopped the trial (a signal, a scheduler, a shutdown).
        Never raises."""
        self._end("KILLED", STOPPED)

    def _end(self, status: str, reason: str) -> None:
        try:
            self._quick.set_tag(self.run_id, C.ERROR, reason)
            self._quick.set_terminated(self.run_id, status)
        except Exception:  # the store may be what failed; the trial's own ending wins
            pass


def config_yaml(request: TrialRequest) -> str:
    """The resolved trial config (its identity) as YAML, for the `trial.yaml` artifact."""
    import yaml

    config = request.config
    doc = {"kind": config.kind, "key": request.key, **config.identity()}
    if config.label:
        doc["label"] = config.label
    return yaml.safe_dump(doc, sort_keys=False)
