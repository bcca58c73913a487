"""A real cluster topology on loopback: a Ray head and a worker, an MLflow server with a
database backend, and the smoke sweep through `--address` and an http:// tracking URI.
The server is killed mid-sweep and restarted, a case of the fault matrix (issue 13): the
trials' logging waits it out, and nothing is lost or duplicated.

The commands come from the cluster block of docs/scale-out.md, so that page stays true.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from mtl_core import contract as C
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .conftest import REPO
from .e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def documented_cluster_commands() -> list[str]:
    """The cluster commands of docs/scale-out.md, in order, with comments dropped."""
    text = (REPO / "docs" / "scale-out.md").read_text()
    block = re.search(r"<!-- cluster-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "docs/scale-out.md has no cluster-commands block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not come up in {timeout:.0f}s")
        time.sleep(0.5)


def test_smoke_sweep_on_a_ray_cluster_with_an_mlflow_server_that_restarts(tmp_path):
    head, worker, server, sweep = documented_cluster_commands()
    ray_port, mlflow_port = free_port(), free_port()

    def concrete(cmd: str) -> list[str]:
        cmd = cmd.replace("HEAD_IP", "127.0.0.1")
        cmd = cmd.replace(":6379", f":{ray_port}").replace("--port=6379", f"--port={ray_port}")
        cmd = cmd.replace(":5000", f":{mlflow_port}").replace(
            "--port 5000", f"--port {mlflow_port}"
        )
        return shlex.split(cmd.replace("sweeps/smoke.yaml", SMOKE))

    box = Sandbox(tmp_path)
    # `ray start` clusters use token authentication; every node and the driver must ask for
    # it. A token of the test's own (not ~/.ray/auth_token) works on a fresh machine too.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = box.env(**auth)
    env.pop("MLFLOW_TRACKING_URI")
    # Unix socket paths are short-limited: keep Ray's session dir near the root.
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    started: list[subprocess.Popen] = []
    try:
        # Two small nodes: one CPU each, so trials land on both.
        subprocess.run(
            [*concrete(head), "--num-cpus=1", f"--temp-dir={ray_tmp}", "--disable-usage-stats"],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=120,
        )
        worker_args = concrete(worker)
        assert worker_args[:2] == ["ray", "start"]
        subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "ray_loopback.py"),
                *worker_args[1:],
                "--num-cpus=1",
                "--disable-usage-stats",
            ],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=120,
        )

        def serve() -> None:
            started.append(
                subprocess.Popen(
                    # One worker process, not four: it answers /health seconds sooner
                    # on two cores, and this test starts the server twice.
                    [*concrete(server), "--workers", "1"],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            wait_http(f"{uri}/health", timeout=180)

        uri = f"http://127.0.0.1:{mlflow_port}"
        serve()
        args = concrete(sweep)
        assert args[:2] == ["mtl-sweep", "run"]
        driver = box.popen(*args[1:], **auth)
        try:
            # Mid-sweep: a trial has trained a round, others have yet to start or finish.
            wait_for_checkpoint(box, driver)
            os.killpg(started[-1].pid, signal.SIGKILL)  # no graceful shutdown
            started[-1].wait(timeout=30)
            time.sleep(2)
            serve()
            back_ms = time.time() * 1000
            out, _ = driver.communicate(timeout=600)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode == 0, out
        assert "Traceback" not in out

        plan = expand(load_spec(SMOKE))
        all_runs = runs(uri, "smoke")
        (sweep_run,) = [r for r in all_runs if r.data.tags[C.KIND] == C.KIND_SWEEP]
        children = [r for r in all_runs if r.data.tags[C.KIND] != C.KIND_SWEEP]
        assert {r.data.tags[C.KEY] for r in children} == (
            {t.key for t in plan.trials} | {j.key for j in plan.jobs}
        )
        assert len(children) == len({r.data.tags[C.KEY] for r in children})  # no duplicate
        assert any(r.info.end_time > back_ms for r in children)  # the sweep went on after it
        for run in children:
            assert run.info.status == "FINISHED"
            assert run.data.tags[C.PARENT] == sweep_run.info.run_id
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server

        from mlflow import MlflowClient

        client = MlflowClient(uri)
        local = client.download_artifacts(
            children[0].info.run_id, C.CHECKPOINT_ARTIFACT, str(tmp_path)
        )
        assert Path(local).stat().st_size > 0
        assert not (tmp_path / "mlflow.db").exists()  # nothing fell back to a local store
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        stop_ray_under(ray_tmp)  # this test's head and worker only, never the user's Ray
