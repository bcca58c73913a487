"""Helpers for end-to-end tests: run the real CLI in a subprocess against a tmp store."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mtl_core import contract as C

from .conftest import REPO


def stop_ray_under(temp_dir: str, timeout: float = 30) -> int:
    """Stop the Ray processes whose command line names `temp_dir`, and only those.

    A forced `ray stop` would kill every Ray instance of the user; a test's own instance
    is told apart by the temp dir it was started with. Returns how many were stopped.
    """
    import psutil

    mine = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in proc.info["cmdline"] or ()):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in mine:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(mine, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return len(mine)


@dataclass
class Sandbox:
    """A tracking store, cache and Tune storage of a test's own, under tmp_path, and a Ray
    temp dir of its own (short: Ray's socket paths must fit 107 bytes), so the test can stop
    exactly the Ray it started."""

    root: Path
    ray_tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rt", dir="/tmp"))

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            MTL_SWEEP_CACHE=str(self.root / "cache"),
            MTL_SWEEP_STORAGE=str(self.root / "ray_results"),
            MLFLOW_TRACKING_URI=self.uri,
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
            RAY_TMPDIR=self.ray_tmp,
            PYTHONUNBUFFERED="1",
        )
        env.pop("RAY_ADDRESS", None)
        env.update(extra)
        return env

    def cli(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        """Run `mtl-sweep ARGS` in a subprocess, in the sandbox directory."""
        return subprocess.run(
            [sys.executable, "-m", "mtl_sweep", *args],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        """Start `mtl-sweep ARGS` without waiting."""
        return subprocess.Popen(
            [sys.executable, "-m", "mtl_sweep", *args],
            cwd=self.root,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def runs(uri: str, experiment: str) -> list:
    """Every run of the experiment, through MLflow."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], max_results=5000))


def finished_count(db: Path, kind: str = C.KIND_TRIAL) -> int:
    """FINISHED runs of `kind`, read straight from sqlite (cheap enough to poll)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=5) as con:
        try:
            row = con.execute(
                "select count(*) from runs r join tags t on r.run_uuid = t.run_uuid "
                "where r.status = 'FINISHED' and t.key = ? and t.value = ?",
                (C.KIND, kind),
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


SMOKE = str(REPO / "sweeps" / "smoke.yaml")


def wait_for_checkpoint(box: Sandbox, driver: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until some trial of `driver`'s sweep has written its first round's checkpoint."""
    deadline = time.monotonic() + timeout
    while not list((box.root / "cache" / "checkpoints").glob("*/*/*/resume.pt")):
        assert driver.poll() is None, driver.stdout.read() if driver.stdout else ""
        assert time.monotonic() < deadline, "no trial checkpointed in time"
        time.sleep(0.5)
