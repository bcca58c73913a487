"""benchmarks/gpu_check.sh --cpu: the one-call device check, proven on the CPU.

It installs the wheels fetch_gpu_wheels.sh downloads (for this interpreter; PyPI is
reachable here and in CI) into a temp dir, runs every step at toy sizes with `import ray`
blocked (the GPU machine has no Ray), and writes one JSON file plus the log.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess

import pytest

from .conftest import REPO

pytestmark = pytest.mark.e2e


def _run(cmd: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    wheels, out = tmp_path / "whl", tmp_path / "out"
    version = ".".join(platform.python_version_tuple()[:2])
    fetch = ["bash", "benchmarks/fetch_gpu_wheels.sh", "--python-version", version]
    got = _run([*fetch, "--dest", str(wheels)], timeout=600)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "MiB (limit 64 MiB)" in got.stdout

    # The CPU mode skips torch.compile (minutes of C++ kernel builds on a CPU).
    check = ["bash", "benchmarks/gpu_check.sh", "--cpu", "--out", str(out), "--budget", "900"]
    proc = _run([*check, "--wheels", str(wheels)], timeout=1000, TMPDIR=str(tmp_path))
    doc = json.loads((out / "gpu_check.json").read_text())
    assert proc.returncode == 0, json.dumps(doc, indent=1) + proc.stdout[-3000:]
    assert (out / "gpu_check.log").read_text().startswith("gpu_check: mode cpu")
    steps = doc["steps"]
    assert doc["ok"] and doc["mode"] == "cpu"
    assert set(steps) == {"install", "environment", "trial", "bench:resnet18"}
    env = steps["environment"]
    for module in ("mlflow", "sqlalchemy", "alembic", "pydantic", "pydantic_core"):
        assert env["checks"][f"{module} from the wheels"], env["origins"]
    assert env["checks"]["ray not importable"]
    trial = steps["trial"]
    assert trial["device_tag"] == "cpu" and trial["system_metrics"]
    assert all(trial["checks"].values()), trial["checks"]
    bench = steps["bench:resnet18"]
    assert set(bench["trainable"]) == {"workers=0", "workers=2"}
    assert bench["ratio_trainable_vs_bare"] > 0 and bench["workers_speedup"] > 0
    assert not list(tmp_path.glob("gpu-check.*")), "the scratch folder was left behind"
