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
from mtl_core.runs import finished_runs
from mtl_core.trial import TrialRequest
from trainables.store_retry import RetryingClient, retrying

BATCH = 100  # MLflow's log_batch takes at most 100 params or tags per call
ERROR_CHARS = 4000  # the error tag keeps the traceback's tail, ending with "Type: message"
SYSTEM_METRICS_INTERVAL_S = 2.0
FAIL_GIVE_UP_S = 30.0  # recording a failure waits less: the store may be what failed


def error_text(exc: BaseException) -> str:
    """The traceback's tail; its last line is `Type: message`, like Python prints it."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text[-ERROR_CHARS:]


def create_once(client: Any, experiment_id: str, name: str, tags: Mapping[str, str]) -> str:
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

    return retrying(create)()


class TrialRun:
    """Create or resume a run, log to it, and end it FINISHED or FAILED."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        name: str,
        tags: Mapping[str, str],
        resume_run_id: str | None = None,
    ) -> None:
        from mlflow import MlflowClient

        self.uri = tracking_uri
        raw = MlflowClient(tracking_uri=tracking_uri)
        self.client = RetryingClient(raw)
        self._quick = RetryingClient(raw, FAIL_GIVE_UP_S)
        self.experiment_id = experiment_id
        if resume_run_id:
            self.run_id, self.resumed = resume_run_id, True
            self.client.update_run(resume_run_id, status="RUNNING")
            if C.ERROR in self.client.get_run(resume_run_id).data.tags:
                self.client.delete_tag(resume_run_id, C.ERROR)  # a retry clears the old error
        else:
            self.run_id, self.resumed = create_once(raw, experiment_id, name, tags), False

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

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log metrics at `step` (the epoch) in one call."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

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
        try:
            self._quick.set_tag(self.run_id, C.ERROR, error_text(exc))
            self._quick.set_terminated(self.run_id, "FAILED")
        except Exception:  # the store may be what failed; the trial's error wins
            pass


def config_yaml(request: TrialRequest) -> str:
    """The resolved trial config (its identity) as YAML, for the `trial.yaml` artifact."""
    import yaml

    config = request.config
    doc = {"kind": config.kind, "key": request.key, **config.identity()}
    if config.label:
        doc["label"] = config.label
    return yaml.safe_dump(doc, sort_keys=False)
