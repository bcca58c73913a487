"""`mtl-sweep run` of a tuned sweep end to end through the real Ray Tune and MLflow: the
run contract, idempotence, growing `samples`, and SIGINT mid-search then a resume."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from mtl_core import contract as C

from .e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint

pytestmark = pytest.mark.e2e

SEARCH = (
    "search={space: {optimizer.lr: {loguniform: [0.0003, 0.03]}}, samples: 2, "
    "scheduler: {name: asha, grace_rounds: 1, reduction_factor: 3}}"
)
TUNED = ("--set", "grid.pretrain=[none]", "--set", "grid.seed=[0, 1]", "--set", SEARCH)


def _kind(all_runs, kind):
    return [r for r in all_runs if r.data.tags.get(C.KIND) == kind]


def _no_key_twice(all_runs) -> None:
    keys = Counter(r.data.tags[C.KEY] for r in all_runs if C.KEY in r.data.tags)
    assert keys.most_common(1)[0][1] == 1, keys.most_common(3)


def test_a_tuned_sweep_keeps_the_contract_reruns_nothing_and_grows_by_the_new_samples(tmp_path):
    box = Sandbox(tmp_path)
    first = box.cli("run", SMOKE, *TUNED)
    assert first.returncode == 0, first.stdout + first.stderr
    every = runs(box.uri, "smoke")
    assert {r.info.status for r in every} == {"FINISHED"}
    search, finals = _kind(every, C.KIND_SEARCH), _kind(every, C.KIND_TRIAL)
    cells = {r.data.tags[C.CELL] for r in search}
    assert len(cells) == 2 and len(search) == 4  # two cells (age, all) x two samples
    assert len(finals) == 4  # two cells x two seeds
    by_id = {r.info.run_id: r for r in search}
    for run in search + finals:  # every trial logs its trivial predictor
        assert "trivial/val/age_mae" in run.data.metrics
        assert "trivial/test/age_mae" in run.data.metrics
    for run in search:
        assert C.SEARCH_OBJECTIVE in run.data.metrics and C.SEARCH_STEPS in run.data.metrics
    for final in finals:
        winner = by_id[final.data.tags[C.TUNED_FROM]]
        assert winner.data.tags[C.CELL] == final.data.tags[C.CELL]
        assert winner.data.tags.get(C.STOPPED_EARLY) != "true"
        assert final.data.params["train.optimizer.lr"] == winner.data.params["train.optimizer.lr"]
        rivals = [
            r
            for r in search
            if r.data.tags[C.CELL] == winner.data.tags[C.CELL]
            and r.data.tags.get(C.STOPPED_EARLY) != "true"
        ]  # selected on validation: the best full-budget objective of its cell
        best = max(r.data.metrics[C.SEARCH_BEST] for r in rivals)
        assert winner.data.metrics[C.SEARCH_BEST] == best
    # the two cells were sampled alike (paired)
    lrs = {
        c: sorted(r.data.params["train.optimizer.lr"] for r in search if r.data.tags[C.CELL] == c)
        for c in cells
    }
    assert len({tuple(v) for v in lrs.values()}) == 1

    again = box.cli("run", SMOKE, *TUNED)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to run" in again.stdout
    assert len(runs(box.uri, "smoke")) == len(every)  # a rerun starts 0 trials

    grown = box.cli("run", SMOKE, *TUNED, "--set", "search.samples=3")
    stop_ray_under(box.ray_tmp)
    assert grown.returncode == 0, grown.stdout + grown.stderr
    after = runs(box.uri, "smoke")
    assert len(_kind(after, C.KIND_SEARCH)) == 6  # exactly one more sample per cell
    _no_key_twice(_kind(after, C.KIND_SEARCH))
    samples = Counter(r.data.tags[C.SAMPLE] for r in _kind(after, C.KIND_SEARCH))
    assert samples == {"0": 2, "1": 2, "2": 2}
    report = box.cli("report", "--format", "json")
    assert report.returncode == 0, report.stderr
    assert '"tuning"' in report.stdout and '"search_steps"' in report.stdout


def test_sigint_mid_search_then_a_rerun_runs_no_sample_twice(tmp_path):
    box = Sandbox(tmp_path)
    slow = (*TUNED, "--set", "train.epochs=6", "--set", "grid.backbone=resnet18")
    driver = box.popen("run", SMOKE, *slow)
    try:
        wait_for_checkpoint(box, driver)
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_ray_under(box.ray_tmp)
    assert driver.returncode == 130, out
    assert "Traceback" not in out
    assert "RUNNING" not in {r.info.status for r in runs(box.uri, "smoke")}
    interrupted = {
        r.data.tags[C.KEY]
        for r in _kind(runs(box.uri, "smoke"), C.KIND_SEARCH)
        if r.info.status == "KILLED"
    }
    assert interrupted

    again = box.cli("run", SMOKE, *slow)
    stop_ray_under(box.ray_tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    every = runs(box.uri, "smoke")
    assert "RUNNING" not in {r.info.status for r in every}
    search = _kind(every, C.KIND_SEARCH)
    _no_key_twice(search)  # an interrupted sample resumed in its own run
    assert {r.data.tags[C.KEY] for r in search} >= interrupted
    assert {r.info.status for r in search} == {"FINISHED"}
    assert len(_kind(every, C.KIND_TRIAL)) == 4
