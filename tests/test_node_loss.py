"""A worker node lost mid-trial, on a two-node Ray cluster on loopback (issue 32).

The head and a worker node have one CPU each, so the smoke sweep's two trials run one on
each. Once both have checkpointed, the worker node is SIGKILLed (its raylet and every
process under it: what a lost machine looks like to Ray). Its trial is retried on the
head, resumes from its checkpoint in the same MLflow run, and logs no step twice.

CI runs it (e2e and cluster, not slow): about three minutes on two cores.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import psutil
import pytest

from mtl_core import contract as C

from .conftest import REPO
from .e2e import SMOKE, Sandbox, runs, stop_ray_under
from .mlflow_server import MlflowServer
from .test_cluster import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

# Two trials of six one-step rounds on ResNet-18, a Tune retry each for the lost node.
SWEEP = (
    *("--set", "grid.pretrain=[none]", "--set", "train.epochs=6"),
    *("--set", "grid.backbone=resnet18", "--set", "failure.retries=1"),
)
# The head declares a node dead after 3 missed 1 s health checks (Ray's default: 5 x 3 s).
FAST_HEALTH_CHECK = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _raylet(node_manager_port: int) -> psutil.Process:
    """The raylet started with this node-manager port."""
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or ())
        if "raylet" in cmd and f"--node_manager_port={node_manager_port}" in cmd:
            return proc
    raise AssertionError(f"no raylet on node-manager port {node_manager_port}")


def _checkpoints(box: Sandbox) -> int:
    return len(list((box.root / "cache" / "checkpoints").glob("*/*/*/resume.pt")))


def test_a_lost_worker_node_resumes_its_trial_on_the_other_node_in_the_same_run(tmp_path):
    server, box = MlflowServer(tmp_path), Sandbox(tmp_path)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = box.env(**auth, **FAST_HEALTH_CHECK)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: socket paths are limited
    port, worker_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    try:
        server.start()
        head = ["ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
        head += ["--include-dashboard=false", f"--temp-dir={ray_tmp}"]
        worker = [sys.executable, str(REPO / "tests" / "ray_loopback.py"), "start"]
        worker += [f"--address={address}", f"--node-manager-port={worker_port}"]
        for command in (head, worker):  # one CPU each: the trial lands on one node
            subprocess.run(
                [*command, "--num-cpus=1", "--disable-usage-stats"],
                env=env,
                cwd=tmp_path,
                check=True,
                capture_output=True,
                timeout=120,
            )
        driver = box.popen(
            "run", SMOKE, *SWEEP, "--address", address, "--tracking-uri", server.uri, **auth
        )
        try:
            while _checkpoints(box) < 2:  # both trials are past their first round
                assert driver.poll() is None, driver.stdout.read() if driver.stdout else ""
                time.sleep(0.5)
            # Both trials run, one CPU each: one of them on the worker node.
            running = {
                r.info.run_id
                for r in runs(server.uri, "smoke")
                if r.data.tags[C.KIND] == C.KIND_TRIAL and r.info.status == "RUNNING"
            }
            assert len(running) == 2
            raylet = _raylet(worker_port)
            for proc in [raylet, *raylet.children(recursive=True)]:
                proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            out, _ = driver.communicate(timeout=600)
            print(f"worker node killed -> sweep done {time.monotonic() - killed:.0f}s later")
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode == 0, out
        assert "Traceback" not in out

        from mlflow import MlflowClient

        client = MlflowClient(server.uri)
        trials = [r for r in runs(server.uri, "smoke") if r.data.tags[C.KIND] == C.KIND_TRIAL]
        assert Counter(r.data.tags[C.KEY] for r in trials) == Counter(
            {k: 1 for k in {r.data.tags[C.KEY] for r in trials}}
        )  # one run per trial: the lost one resumed in its own run
        assert {r.info.run_id for r in trials} == running
        assert {r.info.status for r in trials} == {"FINISHED"}
        for run in trials:
            for key in run.data.metrics:
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                assert len(steps) == len(set(steps)), (key, steps)
    finally:
        server.kill()
        stop_ray_under(ray_tmp)
        stop_ray_under(box.ray_tmp)
