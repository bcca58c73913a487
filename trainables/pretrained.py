"""Finding a pretraining job's checkpoint by its key, through MLflow, from any node."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from filelock import FileLock

from mtl_core import contract as C
from mtl_core.files import atomic_path
from mtl_core.runs import finished_runs
from trainables.store_retry import RetryingClient


class PretrainedMissing(RuntimeError):
    """No FINISHED pretraining run with a checkpoint exists for the key."""


def fetch_pretrained(tracking_uri: str, job_key: str, cache_dir: Path) -> tuple[Path, str]:
    """Download (once per node) the best checkpoint of pretraining job `job_key`.

    Looks in every experiment, so a job finished by another sweep is reused. Returns
    (local path, run id). Cached under cache_dir/pretrained/<run id>/, so a rerun job
    (new run, same key) is fetched afresh.
    """
    from mlflow import MlflowClient

    client = RetryingClient(MlflowClient(tracking_uri=tracking_uri))
    runs = finished_runs(client, job_key, C.KIND_PRETRAIN)
    if not runs:
        raise PretrainedMissing(
            f"pretraining job {job_key} has no FINISHED run in {tracking_uri}; "
            "run the sweep that defines it (mtl-sweep run) first"
        )
    run_id = runs[0].info.run_id
    target = cache_dir / "pretrained" / run_id / Path(C.CHECKPOINT_ARTIFACT).name
    if target.exists():
        return target, run_id
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp, atomic_path(target) as part:
                os.replace(client.download_artifacts(run_id, C.CHECKPOINT_ARTIFACT, tmp), part)
    return target, run_id
