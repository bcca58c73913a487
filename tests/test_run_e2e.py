"""`mtl-sweep run` end to end through the real Ray and a real MLflow store, on CPU."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .e2e import SMOKE, Sandbox, finished_count, runs, stop_ray_under

pytestmark = pytest.mark.e2e
FAST_SYSTEM_METRICS = {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "0.2"}


def _by_kind(all_runs, kind):
    return [r for r in all_runs if r.data.tags.get(C.KIND) == kind]


def _assert_one_finished_per_key(all_runs):
    keys = [
        r.data.tags[C.KEY] for r in all_runs if r.info.status == "FINISHED" and C.KEY in r.data.tags
    ]
    assert len(keys) == len(set(keys)), "duplicate FINISHED runs for a key"


def test_smoke_end_to_end_then_rerun_then_grow(tmp_path):
    box = Sandbox(tmp_path)
    proc = box.cli("run", SMOKE, **FAST_SYSTEM_METRICS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr

    plan = expand(load_spec(SMOKE))
    all_runs = runs(box.uri, "smoke")
    (sweep,) = _by_kind(all_runs, C.KIND_SWEEP)
    trials, jobs = _by_kind(all_runs, C.KIND_TRIAL), _by_kind(all_runs, C.KIND_PRETRAIN)
    assert {r.data.tags[C.KEY] for r in trials} == {t.key for t in plan.trials}
    assert {r.data.tags[C.KEY] for r in jobs} == {j.key for j in plan.jobs}
    assert sweep.info.status == "FINISHED"

    from mlflow import MlflowClient

    client = MlflowClient(box.uri)
    sweep_artifacts = {a.path for a in client.list_artifacts(sweep.info.run_id)}
    assert {C.SPEC_ARTIFACT, C.REPORT_ARTIFACT} <= sweep_artifacts
    job_run_ids = {r.info.run_id for r in jobs}
    for run in trials + jobs:
        tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
        assert run.info.status == "FINISHED"
        assert tags[C.PARENT] == sweep.info.run_id
        assert tags[C.SWEEP] == "smoke"
        tasks = tags[C.TASKS].split("+")
        for key in (C.BACKBONE, C.PRETRAIN, C.WEIGHTING, C.SEED):
            assert tags[key]
        for task in tasks:
            metric = PRIMARY_METRIC[task].name
            assert f"test/{metric}" in metrics
            assert f"val/{metric}" in metrics
            assert f"train/{task}_loss" in metrics
            assert f"loss_weight.{task}" in params
            if metric.endswith("_acc"):
                assert 0.0 <= metrics[f"test/{metric}"] <= 1.0
        assert "train/loss" in metrics
        assert any(k.startswith("system/") for k in metrics), "no system metrics"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert C.CONFIG_ARTIFACT in artifacts
        assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")} == {
            C.CHECKPOINT_ARTIFACT
        }
        if run in trials and tags[C.PRETRAIN] != "none":
            assert tags["mtl_sweep.pretrain_run"] in job_run_ids
            assert "trunk" in tags["mtl_sweep.init"]
        assert "/" in run.info.run_name  # e.g. shufflenet_v2_x0_5/age/none/s0

    # A second run starts nothing.
    again = box.cli("run", SMOKE)
    assert again.returncode == 0, again.stderr
    assert "nothing to run" in again.stdout
    assert f"{len(plan.trials)} of {len(plan.trials)} trials already done" in again.stdout
    assert len(runs(box.uri, "smoke")) == len(all_runs)

    # Growing the grid runs only the new cells, and reuses the pretraining job.
    grown = box.cli("run", SMOKE, "--set", "grid.seed=[0, 1]")
    assert grown.returncode == 0, grown.stdout + grown.stderr
    after = runs(box.uri, "smoke")
    new_trials = _by_kind(after, C.KIND_TRIAL)
    assert len(new_trials) == 2 * len(trials)
    assert {r.data.tags[C.SEED] for r in new_trials} == {"0", "1"}
    assert len(_by_kind(after, C.KIND_PRETRAIN)) == len(jobs)
    assert len(_by_kind(after, C.KIND_SWEEP)) == 1  # the parent run is reused
    old_ids = {r.info.run_id for r in trials}
    assert old_ids <= {r.info.run_id for r in new_trials}
    _assert_one_finished_per_key(after)


def test_a_failing_trial_fails_alone_and_runs_again_next_time(tmp_path):
    box = Sandbox(tmp_path)
    args = ("run", SMOKE, "--set", "grid.pretrain=[none]")
    proc = box.cli(*args, "--set", "debug.fail_tasks=[[age]]")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "InjectedFailure" in proc.stderr
    trials = _by_kind(runs(box.uri, "smoke"), C.KIND_TRIAL)
    status = {r.data.tags[C.TASKS]: r.info.status for r in trials}
    assert status == {"age": "FAILED", "age+gender+emotion+smile": "FINISHED"}
    (failed,) = [r for r in trials if r.info.status == "FAILED"]
    assert (
        failed.data.tags[C.ERROR]
        .splitlines()[-1]
        .startswith("trainables.trainable.InjectedFailure")
    )
    assert failed.data.tags[C.KEY] in proc.stderr

    fixed = box.cli(*args)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    trials = _by_kind(runs(box.uri, "smoke"), C.KIND_TRIAL)
    assert sorted(r.info.status for r in trials) == ["FAILED", "FINISHED", "FINISHED"]
    _assert_one_finished_per_key(trials)


def test_a_retried_trial_resumes_from_its_checkpoint(tmp_path):
    box = Sandbox(tmp_path)
    proc = box.cli(
        "run",
        SMOKE,
        "--set",
        "grid.pretrain=[none]",
        "--set",
        "grid.tasks=[age]",
        "--set",
        "debug.fail_tasks=[[age]]",
        "--set",
        "debug.fail_epoch=1",
        "--set",
        "failure.retries=1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (trial,) = _by_kind(runs(box.uri, "smoke"), C.KIND_TRIAL)
    assert trial.info.status == "FINISHED"  # the same run, resumed

    from mlflow import MlflowClient

    history = MlflowClient(box.uri).get_metric_history(trial.info.run_id, "train/loss")
    # Rounds of one step (S = 6): round 0 (step 1) was not trained again.
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]


def test_killing_the_driver_loses_no_finished_trial(tmp_path):
    box = Sandbox(tmp_path)
    # Four trials on two CPUs: when the first finishes, the others are running or pending.
    sets = ["grid.seed=[0, 1]", "grid.pretrain=[none]"]
    args = ("run", SMOKE, *(x for item in sets for x in ("--set", item)))
    driver = box.popen(*args)
    deadline = time.monotonic() + 240
    while finished_count(box.db) < 1:
        assert driver.poll() is None, driver.stdout.read()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.3)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    # Ray's node processes die with their driver, but its dashboard and runtime-env
    # agents can outlive it; stop them (this test's Ray only) so nothing is left behind.
    stop_ray_under(box.ray_tmp)
    before = {
        r.data.tags[C.KEY]: r.info.run_id
        for r in runs(box.uri, "smoke")
        if r.info.status == "FINISHED" and r.data.tags.get(C.KIND) == C.KIND_TRIAL
    }
    assert before

    proc = box.cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = runs(box.uri, "smoke")
    assert not [r for r in after if r.info.status == "RUNNING"]
    _assert_one_finished_per_key(after)
    finished = {
        r.data.tags[C.KEY]: r.info.run_id
        for r in after
        if r.info.status == "FINISHED" and r.data.tags.get(C.KIND) == C.KIND_TRIAL
    }
    plan = expand(load_spec(SMOKE, sets))
    assert set(finished) == {t.key for t in plan.trials}
    for key, run_id in before.items():
        assert finished[key] == run_id  # never rerun
