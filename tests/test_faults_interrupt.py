"""Two Ctrl-Cs, then the same command against a new store with the same cache (issue 32).

A second SIGINT aborts at once, and every interrupted trial still ends KILLED, never
FAILED. Then `mlflow.db` is deleted and the sweep run again with the cache it had: the
interrupted trial's checkpoint names a run the new store never had, so it is discarded
with one warning line and the trial runs afresh, FINISHED once.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter

import pytest

from mtl_core import contract as C

from .e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint

# One trial of ten rounds on smoke's own small trunk: a round is well under a second, so
# the first Ctrl-C stops the trial at its next report, before the second arrives.
ONE_TRIAL = (
    *("--set", "grid.pretrain=[none]", "--set", "grid.tasks=[age]"),
    *("--set", "train.epochs=100"),
)


@pytest.mark.e2e
def test_a_second_ctrl_c_aborts_at_once_and_a_new_store_with_the_old_cache_starts_afresh(
    tmp_path,
):
    box = Sandbox(tmp_path)
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
    assert driver.returncode == 130, out
    assert aborted_s < 30, out  # at once: Ray's shutdown and the runs' end, no waiting
    every = runs(box.uri, "smoke")
    trials = [r for r in every if r.data.tags[C.KIND] == C.KIND_TRIAL]
    assert trials and {r.info.status for r in trials} == {"KILLED"}, [
        (r.info.status, r.data.tags.get(C.ERROR)) for r in trials
    ]
    assert {r.info.status for r in every} == {"KILLED"}  # the sweep run too
    print(f"second SIGINT -> exit 130 after {aborted_s:.1f}s")

    # A new store at the same place, the same cache.
    box.db.unlink()
    shutil.rmtree(box.root / "mlartifacts", ignore_errors=True)
    again = box.cli("run", SMOKE, *ONE_TRIAL)
    stop_ray_under(box.ray_tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    warned = [ln for ln in again.stderr.splitlines() if "discarded 1 resume checkpoint" in ln]
    assert len(warned) == 1, again.stderr
    trials = [r for r in runs(box.uri, "smoke") if r.data.tags[C.KIND] == C.KIND_TRIAL]
    assert [r.info.status for r in trials] == ["FINISHED"]
    assert Counter(r.data.tags[C.KEY] for r in trials).most_common(1)[0][1] == 1
