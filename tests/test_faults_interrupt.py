"""Two Ctrl-Cs, then the same command against a new store with the same cache (issue 32).

A second SIGINT aborts at once, and every interrupted trial still ends KILLED, never
FAILED. Then `mlflow.db` is deleted and the sweep run again with the cache it had: the
interrupted trial's checkpoint names a run the new store never had, so it is discarded
with one warning line and the trial runs afresh, FINISHED once.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from mtl_core import contract as C
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .e2e import SMOKE, Sandbox, stop_ray_under, wait_for_checkpoint

# One trial of 18 one-step rounds on ResNet-18, each with its ~130 MB checkpoint: about a
# second a round, so the first Ctrl-C stops the trial at its next report while the driver
# is still stopping Tune when the second arrives.
ONE_TRIAL = (
    *("--set", "grid.pretrain=[none]", "--set", "grid.tasks=[age]"),
    *("--set", "grid.backbone=resnet18", "--set", "train.epochs=6"),
)


def _runs(db: Path) -> list[tuple[str, str, str]]:
    """(kind, status, trial key) of every run, read with sqlite3: MLflow keeps a store's
    connections per URI in this process, and would go on reading a deleted file."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "select k.value, r.status, coalesce(t.value, '') from runs r "
            "join tags k on k.run_uuid = r.run_uuid and k.key = ? "
            "left join tags t on t.run_uuid = r.run_uuid and t.key = ?",
            (C.KIND, C.KEY),
        ).fetchall()
    return sorted(rows)


@pytest.mark.e2e
def test_a_second_ctrl_c_aborts_at_once_and_a_new_store_with_the_old_cache_starts_afresh(
    tmp_path,
):
    box = Sandbox(tmp_path)
    (key,) = [
        t.key for t in expand(load_spec(SMOKE, [s for s in ONE_TRIAL if s != "--set"])).trials
    ]
    driver = box.popen("run", SMOKE, *ONE_TRIAL)
    try:
        wait_for_checkpoint(box, driver)
        driver.send_signal(signal.SIGINT)
        time.sleep(2)
        second = time.monotonic()
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
        aborted_s = time.monotonic() - second
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_ray_under(box.ray_tmp)
    # 130, or killed by SIGINT itself when the second came as the driver was exiting (the
    # same 130 in a shell)
    assert driver.returncode in (130, -signal.SIGINT), out
    assert aborted_s < 30, out  # at once: Ray's shutdown and the runs' end, no waiting
    assert _runs(box.db) == [(C.KIND_SWEEP, "KILLED", ""), (C.KIND_TRIAL, "KILLED", key)], out
    print(f"second SIGINT -> exit 130 after {aborted_s:.1f}s")

    # A new store at the same place, the same cache.
    box.db.unlink()
    shutil.rmtree(box.root / "mlartifacts", ignore_errors=True)
    again = box.cli("run", SMOKE, *ONE_TRIAL)
    stop_ray_under(box.ray_tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    warned = [ln for ln in again.stderr.splitlines() if "discarded 1 resume checkpoint" in ln]
    assert len(warned) == 1, again.stderr
    assert _runs(box.db) == [(C.KIND_SWEEP, "FINISHED", ""), (C.KIND_TRIAL, "FINISHED", key)]
