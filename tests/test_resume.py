"""Trial state across runs: a retried trial continues bit-identically (RNG states travel
with the checkpoint), and a pretrained age head adopts the downstream split's scale."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mtl_sweep.expand import expand
from mtl_sweep.load import load_spec
from mtl_sweep.payload import RunContext, job_payload, trial_payload
from mtl_sweep.tracking import Tracker
from trainables import checkpoint as ckpt
from trainables.models.heads import AgeRegression
from trainables.trainable import InjectedFailure, load_data, run_trial

from .conftest import SWEEPS


def _payload(tmp_path, overrides):
    spec = load_spec(SWEEPS / "smoke.yaml", ["grid.pretrain=[none]", *overrides])
    (trial,) = expand(spec).trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = Tracker(uri).experiment_id("resume", create=True)
    payload = trial_payload(trial, RunContext(spec, uri, exp, None, tmp_path / "cache"))
    payload["run"]["threads"] = 1
    return payload


def test_rng_state_round_trips_through_a_checkpoint_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    ckpt.save({"rng": ckpt.rng_state()}, tmp_path / "state.pt")
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    ckpt.restore_rng(ckpt.load(tmp_path / "state.pt")["rng"])  # loaded weights_only
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# Both have dropout in training mode: SSR-Net (0.2 before each stage's dense layers) and
# MobileNetV3-Small (0.2 in what is left of its classifier).
CASES = {
    "ssrnet": ["grid.backbone=[ssrnet]", "grid.tasks=[age]", "train.image_size=64"],
    "mobilenet": ["grid.backbone=[mobilenet_v3_small]", "grid.tasks=[all]", "train.image_size=32"],
}


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_trial_with_dropout_is_bit_identical(tmp_path, case):
    overrides = [*CASES[case], "train.epochs=3"]
    straight = _payload(tmp_path / "straight", overrides)
    expected = run_trial(straight, work_dir=tmp_path / "straight" / "work")

    retried = _payload(tmp_path / "retried", overrides)
    retried["run"]["fail_epoch"] = 1  # stops after epoch 0's checkpoint
    work = tmp_path / "retried" / "work"
    with pytest.raises(InjectedFailure):
        run_trial(retried, work_dir=work)
    random.seed(123)  # what a fresh worker process would have: anything but the saved state
    np.random.seed(123)
    result = run_trial(retried, resume_dir=work / "checkpoint", work_dir=work)

    a = ckpt.load(tmp_path / "straight" / "work" / "checkpoint" / ckpt.STATE_FILE)
    b = ckpt.load(work / "checkpoint" / ckpt.STATE_FILE)
    assert a["epoch"] == b["epoch"] == 2
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    tests = {k: v for k, v in expected.items() if k.startswith("test/")}
    assert tests and tests == {k: result[k] for k in tests}


def test_restandardise_keeps_the_heads_predictions_and_adopts_the_new_scale():
    torch.manual_seed(0)
    head = AgeRegression(8, init_age=52.0, scale=9.0)  # as pretrained on IMDB-WIKI
    torch.nn.init.normal_(head.fc.bias)
    x, target = torch.randn(5, 8), torch.full((5,), 40.0)
    with torch.no_grad():
        before = head(x)
        head.restandardise(31.5, 14.0)  # the downstream train split's mean and std
        after, loss = head(x), head.loss(head(x), target)
    assert (float(head.mean), float(head.scale)) == (31.5, 14.0)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-4)
    # The loss is now in the downstream's standard deviations: L1 years / 14.
    assert float(loss) == pytest.approx(float((before - target).abs().mean()) / 14.0, rel=1e-5)


def test_a_pretrained_trial_uses_the_downstream_age_scale(tmp_path):
    spec = load_spec(
        SWEEPS / "smoke.yaml", ["grid.pretrain=[tiny]", "grid.tasks=[age]", "train.epochs=1"]
    )
    plan = expand(spec)
    (trial,), (job,) = plan.trials, plan.jobs
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = Tracker(uri).experiment_id("pretrained", create=True)
    ctx = RunContext(spec, uri, exp, None, tmp_path / "cache")
    run_trial(job_payload(job, ctx), work_dir=tmp_path / "job")
    payload = trial_payload(trial, ctx)
    run_trial(payload, work_dir=tmp_path / "trial")

    pre = ckpt.load(tmp_path / "job" / "checkpoint" / ckpt.STATE_FILE)["model"]
    down = ckpt.load(tmp_path / "trial" / "checkpoint" / ckpt.STATE_FILE)["model"]
    data = load_data(payload, spec.train.image_size, tmp_path / "cache")
    assert float(down["heads.age.mean"]) == pytest.approx(data.init_age)
    assert float(down["heads.age.scale"]) == pytest.approx(max(data.age_scale, 1.0))
    assert float(pre["heads.age.mean"]) != pytest.approx(data.init_age)  # IMDB-WIKI's own
