"""Where a trial's resume checkpoint lives, and which MLflow run it belongs to. No torch.

A checkpoint belongs to one store: its folder is
`<cache>/checkpoints/<store hash>/<experiment id>/<trial key>`, the store hash being a
short hash of the resolved tracking URI (credentials left out). A fresh store reuses
experiment id 1, and a deleted `mlflow.db` comes back at the same URI, so the folder also
names its run in `run.json`; the driver and the trial discard a checkpoint whose run the
store no longer has (see `orphaned`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mtl_core.files import atomic_path

OWNER_FILE = "run.json"  # {"run_id": ...}: the MLflow run the checkpoint continues
TMP_GLOB = ".*.tmp-*"  # files.atomic_path's temporaries; a killed writer leaves one behind


def store_hash(tracking_uri: str) -> str:
    """12 hex digits of the URI's SHA-256, without user and password (same store, new
    credentials: same checkpoints)."""
    parts = urlsplit(tracking_uri)
    if parts.netloc and "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return hashlib.sha256(urlunsplit(parts).encode()).hexdigest()[:12]


def resume_dir(cache_dir: Path, tracking_uri: str, experiment_id: str, key: str) -> Path:
    """The resume folder of trial (or pretraining job) `key` in this store and experiment."""
    return cache_dir / "checkpoints" / store_hash(tracking_uri) / experiment_id / key


def write_owner(folder: Path, run_id: str) -> None:
    """Record that the checkpoints in `folder` continue MLflow run `run_id`."""
    with atomic_path(folder / OWNER_FILE) as tmp:
        tmp.write_text(json.dumps({"run_id": run_id}))


def read_owner(folder: Path) -> str | None:
    """The run id recorded by `write_owner`, or None (no file, or an unreadable one)."""
    try:
        return str(json.loads((folder / OWNER_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_partials(folder: Path) -> int:
    """Delete temporaries a killed writer left in `folder`; returns how many.

    Only the trial's own attempt writes there (Tune runs one attempt at a time), so at an
    attempt's start every temporary is a leftover.
    """
    n = 0
    for tmp in folder.glob(TMP_GLOB) if folder.is_dir() else ():
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        n += 1
    return n


def run_is_gone(exc: BaseException) -> bool:
    """Whether an MLflow error says the run does not exist (RESOURCE_DOES_NOT_EXIST)."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def orphaned(client: object, folder: Path, experiment_id: str) -> bool:
    """Whether the checkpoint in `folder` continues a run this store does not have: no
    such run, a deleted one, or one of another experiment. An unreadable owner file
    counts as orphaned when a checkpoint is there; store faults propagate."""
    run_id = read_owner(folder)
    if run_id is None:
        return any(p.name != OWNER_FILE for p in folder.iterdir()) if folder.is_dir() else False
    try:
        run = client.get_run(run_id)  # type: ignore[attr-defined]
    except Exception as exc:
        if run_is_gone(exc):
            return True
        raise
    info = run.info
    return info.lifecycle_stage == "deleted" or info.experiment_id != experiment_id


def discard(folder: Path) -> None:
    """Remove a resume folder: its trial starts afresh."""
    shutil.rmtree(folder, ignore_errors=True)
