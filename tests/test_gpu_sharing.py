"""Fractional GPUs on a CPU-only machine: Ray declares a fake GPU, trials share it.

Ray hands out GPU ids as bookkeeping (it sets CUDA_VISIBLE_DEVICES for each trial) even
when no CUDA device exists, so the scheduling half of a GPU sweep is testable here.
"""

from __future__ import annotations

import pytest

from mtl_core import contract as C

from .e2e import SMOKE, Sandbox, runs

pytestmark = pytest.mark.e2e
FAKE_GPU = {"MTL_SWEEP_RAY_NUM_CPUS": "2", "MTL_SWEEP_RAY_NUM_GPUS": "1"}


def test_two_trials_share_one_gpu_at_once(tmp_path):
    box = Sandbox(tmp_path)
    proc = box.cli(
        "run",
        SMOKE,
        *("--set", "grid.pretrain=[none]", "--set", "grid.tasks=[all]"),
        *("--set", "grid.seed=[0, 1]", "--set", "train.epochs=4"),
        *("--set", "resources.gpu=0.5", "--set", "resources.cpu=1"),
        *("--set", "train.device=cpu"),
        **FAKE_GPU,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = [r for r in runs(box.uri, "smoke") if r.data.tags.get(C.KIND) == C.KIND_TRIAL]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    a, b = (r.info for r in trials)
    assert a.start_time < b.end_time and b.start_time < a.end_time, "the trials did not overlap"
    for run in trials:
        assert run.data.tags["mtl_sweep.cuda_visible_devices"] == "0"  # Ray's one fake GPU
        assert run.data.tags["mtl_sweep.device"] == "cpu"  # train.device, not the GPU share
        assert run.data.params["run.device"] == "cpu"


@pytest.mark.parametrize(("fake", "gpu"), [({}, "1"), (FAKE_GPU, "2")])
def test_more_gpus_than_a_node_has_is_one_line_and_exit_2(tmp_path, fake, gpu):
    box = Sandbox(tmp_path)
    proc = box.cli(
        "run", SMOKE, "--set", "grid.pretrain=[none]", "--set", f"resources.gpu={gpu}", **fake
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # above it: data generation, MLflow setup
    have = 1 if fake else 0
    assert line == (
        f"error: {SMOKE}: resources.gpu: each trial asks for {gpu} GPU(s) but the largest node "
        f"of the Ray cluster has {have}; lower resources.gpu or add a node with more GPUs"
    )
    started = [r for r in runs(box.uri, "smoke") if r.data.tags.get(C.KIND) == C.KIND_TRIAL]
    assert started == []
