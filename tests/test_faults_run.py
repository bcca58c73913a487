"""The fault matrix, run-time half: interruptions, two drivers and tracking-store faults.

(tests/test_faults.py holds the input half: hostile specs and data.) Each case asserts the
exit code, a clear message without a traceback, and the MLflow states afterwards: no run
left RUNNING, no FINISHED trial lost or duplicated, an interrupted trial resumed from its
checkpoint. The MLflow server killed mid-sweep and restarted is a case of
tests/test_cluster.py, which already runs a sweep through a server.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from mtl_core import contract as C

from .e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint

# Six rounds of one step per trial on ResNet-18 (smoke's own trunk is 4x quicker): long
# enough to interrupt one mid-way, after a second driver has been refused.
SLOW_SMOKE = (
    *("--set", "grid.pretrain=[none]", "--set", "train.epochs=6"),
    *("--set", "grid.backbone=resnet18"),
)


def _one_clean_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


# --- tracking-store faults: one line, exit 3, within seconds -------------------------------


def test_a_corrupt_sqlite_store_is_exit_3(cli, tmp_path: Path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    started = time.monotonic()
    result = cli("report", "--tracking-uri", f"sqlite:///{db}")
    assert result.code == 3
    assert "not a usable sqlite database" in _one_clean_line(result.err)
    assert time.monotonic() - started < 10


def test_a_locked_sqlite_store_is_exit_3(cli, tmp_path: Path, monkeypatch):
    from mtl_sweep.store import health

    monkeypatch.setattr(health, "TIMEOUT_S", 0.5)
    db = tmp_path / "mlflow.db"
    holder = sqlite3.connect(db)
    holder.execute("create table t (x)")
    holder.execute("begin exclusive")  # another process mid-write, holding the lock
    try:
        result = cli("plan", str(Path(SMOKE)), "--tracking-uri", f"sqlite:///{db}")
    finally:
        holder.rollback()
        holder.close()
    assert result.code == 3
    assert "locked" in _one_clean_line(result.err)


def test_an_unreachable_server_is_exit_3_within_seconds(cli):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = cli("report", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.code == 3
    assert "unreachable" in _one_clean_line(result.err)
    assert time.monotonic() - started < 10


def test_an_unknown_scheme_is_exit_2(cli):
    result = cli("report", "--tracking-uri", "./mlruns")
    assert result.code == 2
    _one_clean_line(result.err)


# --- interruptions and a second driver, on a real `mtl-sweep run` --------------------------


def _trials(box: Sandbox) -> list:
    return [r for r in runs(box.uri, "smoke") if r.data.tags.get(C.KIND) == C.KIND_TRIAL]


@pytest.mark.e2e
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_trial_kills_honestly_and_the_next_run_resumes(tmp_path, signum, code):
    box = Sandbox(tmp_path)
    driver = box.popen("run", SMOKE, *SLOW_SMOKE)
    try:
        wait_for_checkpoint(box, driver)
        if signum == signal.SIGINT:  # a second driver on the same sweep is refused
            second = box.cli("run", SMOKE, *SLOW_SMOKE, timeout=120)
            assert second.returncode == 2, second.stdout + second.stderr
            assert "another driver is running this sweep" in second.stderr
            assert "Traceback" not in second.stderr
        driver.send_signal(signum)
        out, _ = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_ray_under(box.ray_tmp)
    assert driver.returncode == code, out
    assert "Traceback" not in out
    assert "interrupted by" in out and "finished 0" not in out.splitlines()[-1]
    states = {r.info.status for r in runs(box.uri, "smoke")}
    assert "RUNNING" not in states
    sweep = [r for r in runs(box.uri, "smoke") if r.data.tags.get(C.KIND) == C.KIND_SWEEP]
    assert [r.info.status for r in sweep] == ["KILLED"]
    killed = [r for r in _trials(box) if r.info.status == "KILLED"]
    assert killed and all(
        "resumes from its last checkpoint" in r.data.tags[C.ERROR] for r in killed
    )
    if signum == signal.SIGTERM:
        return  # the resume is the same for both signals; check it once

    from mlflow import MlflowClient

    client = MlflowClient(box.uri)
    before = {
        r.info.run_id: [m.step for m in client.get_metric_history(r.info.run_id, "train/loss")]
        for r in killed
    }
    again = box.cli("run", SMOKE, *SLOW_SMOKE)
    stop_ray_under(box.ray_tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    trials = _trials(box)
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert Counter(r.data.tags[C.KEY] for r in trials).most_common(1)[0][1] == 1  # no duplicate
    for run_id, steps in before.items():
        history = [m.step for m in client.get_metric_history(run_id, "train/loss")]
        assert len(history) == len(set(history))  # no round trained twice
        resumed = sorted(set(history) - set(steps))
        assert steps and resumed and resumed[0] > max(steps)  # continued, not from step 1


@pytest.mark.e2e
def test_synthetic_faces_that_cannot_be_written_stop_the_sweep_in_one_line(tmp_path):
    """The faces render while Tune starts the first trials, which wait for them: a render
    that fails stops every trial (none runs) and the run says why, exit 2."""
    box = Sandbox(tmp_path)
    (box.root / "cache").mkdir()
    (box.root / "cache" / "synthetic").write_text("a file where the faces' folder goes")
    try:
        result = box.cli("run", SMOKE)
    finally:
        stop_ray_under(box.ray_tmp)
    assert result.returncode == 2, result.stdout + result.stderr
    err = "\n".join(ln for ln in result.stderr.splitlines() if " INFO mlflow." not in ln)
    line = _one_clean_line(err)
    assert line.startswith("error: could not write the synthetic faces under"), result.stderr
    assert "File exists" in line
    assert not _trials(box)
    sweep = [r for r in runs(box.uri, "smoke") if r.data.tags.get(C.KIND) == C.KIND_SWEEP]
    assert [r.info.status for r in sweep] == ["KILLED"]  # the driver gave up (runner._drive)
