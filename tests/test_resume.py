"""Trial state across runs: a retried trial continues bit-identically (RNG states travel
with the checkpoint), and a pretrained age head adopts the downstream split's scale."""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_core import contract as C
from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, job_request, trial_request
from mtl_sweep.spec.load import load_spec
from mtl_sweep.store.tracker import Tracker
from trainables import checkpoint as ckpt
from trainables.models.heads import AgeRegression
from trainables.trainable import InjectedFailure, run_trial
from trainables.trial_data import load_data

from .conftest import REPO, SWEEPS


def _request(tmp_path, overrides, **execution):
    spec = load_spec(SWEEPS / "smoke.yaml", ["grid.pretrain=[none]", *overrides])
    (trial,) = expand(spec).trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = Tracker(uri).experiment_id("resume", create=True)
    request = trial_request(trial, RunContext(spec, uri, exp, None, tmp_path / "cache"))
    ex = replace(request.execution, threads=1, checkpoint_dir=str(tmp_path / "ck"), **execution)
    return replace(request, execution=ex)


def _best_weights(request) -> dict[str, torch.Tensor]:
    """The best-on-val weights the trial logged to MLflow (checkpoint/best.pt)."""
    from mlflow import MlflowClient

    client = MlflowClient(request.execution.tracking_uri)
    (run,) = client.search_runs([request.execution.experiment_id])
    local = client.download_artifacts(run.info.run_id, C.CHECKPOINT_ARTIFACT)
    return ckpt.load(Path(local))


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
    # Matched budget: 2 epochs x 48 / 16 = 6 steps, one round per step; with
    # train.eval_every=2 three rounds, so a failure at round 1 resumes mid-training.
    overrides = [*CASES[case], "train.epochs=2", "train.eval_every=2"]
    straight = _request(tmp_path / "straight", overrides)
    expected = run_trial(straight)

    retried = _request(tmp_path / "retried", overrides, fail_epoch=1)  # after round 0's
    with pytest.raises(InjectedFailure):
        run_trial(retried)
    random.seed(123)  # what a fresh worker process would have: anything but the saved state
    np.random.seed(123)
    torch.manual_seed(123)
    result = run_trial(retried)

    a, b = _best_weights(straight), _best_weights(retried)
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name
    tests = {k: v for k, v in expected.items() if k.startswith("test/")}
    assert tests and tests == {k: result[k] for k in tests}


def test_a_trial_resumed_after_a_round_that_did_not_improve_is_bit_identical(tmp_path, monkeypatch):
    # Val scores by round 1.0, 2.0, 0.5: round 1's checkpoint holds the model's own tensors
    # apart from round 0's best weights, and the resumed round 2 trains on from them.
    import trainables.trainable as trainable

    overrides = [*CASES["mobilenet"], "train.epochs=2", "train.eval_every=2"]
    results = []
    for name, fail in (("straight", None), ("retried", 2)):
        scores = iter([1.0, 2.0, 0.5])
        monkeypatch.setattr(trainable, "selection_score", lambda *a, s=scores: next(s))
        request = _request(tmp_path / name, overrides, fail_epoch=fail)
        if fail is not None:
            with pytest.raises(InjectedFailure):
                run_trial(request)
        results.append((run_trial(request), _best_weights(request)))
    (straight, a), (retried, b) = results
    assert straight["best_step"] == retried["best_step"] == 6  # round 2's last step
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name
    tests = {k: v for k, v in straight.items() if k.startswith("test/")}
    assert tests and tests == {k: retried[k] for k in tests}


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
    job_req, trial_req = job_request(job, ctx), trial_request(trial, ctx)
    run_trial(job_req)
    run_trial(trial_req)

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    best = {}
    for req in (job_req, trial_req):
        (run,) = client.search_runs([exp], f"tags.`{C.KEY}` = '{req.key}'")
        best[req.key] = ckpt.load(
            Path(client.download_artifacts(run.info.run_id, C.CHECKPOINT_ARTIFACT))
        )
    pre, down = best[job_req.key], best[trial_req.key]
    data = load_data(trial_req.config, tmp_path / "cache")
    assert float(down["heads.age.mean"]) == pytest.approx(data.init_age)
    assert float(down["heads.age.scale"]) == pytest.approx(max(data.age_scale, 1.0))
    assert float(pre["heads.age.mean"]) != pytest.approx(data.init_age)  # IMDB-WIKI's own


# --- faults round 2: a checkpoint of another store, a kill during the save ------------------

# Matched budget: 2 epochs x 48 / 16 = 6 steps; eval_every=2 gives three rounds (steps 2,4,6).
THREE_ROUNDS = ["grid.tasks=[age]", "train.epochs=2", "train.eval_every=2"]


def _history(request) -> dict[str, list[int]]:
    """Every metric key of the trial's only run -> the steps it was logged at."""
    from mlflow import MlflowClient

    client = MlflowClient(request.execution.tracking_uri)
    (run,) = client.search_runs([request.execution.experiment_id])
    return {
        key: [m.step for m in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }


def _attempt_elsewhere(tmp_path: Path, **execution) -> subprocess.CompletedProcess:
    """One attempt of the THREE_ROUNDS trial in a process of its own (as a Ray worker):
    it may die, and its MLflow store is not cached in this process."""
    script = (
        "import sys; from dataclasses import replace; from pathlib import Path\n"
        "from tests.test_resume import _request, THREE_ROUNDS\n"
        "from trainables.trainable import run_trial\n"
        "r = _request(Path(sys.argv[1]), THREE_ROUNDS)\n"
        f"run_trial(replace(r, execution=replace(r.execution, **{execution!r})))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, timeout=300
    )


def test_a_kill_inside_the_checkpoint_save_logs_no_step_twice(tmp_path):
    """The trial's process is SIGKILLed half-way through writing round 1's checkpoint
    (the kill_in_save hook); the next attempt removes the partial file before anything
    else, resumes from round 0 in the same run, and logs every step of every key once."""
    died = _attempt_elsewhere(tmp_path, kill_in_save=1)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    request = _request(tmp_path, THREE_ROUNDS)
    folder = Path(request.execution.checkpoint_dir)
    (partial,) = folder.glob(".resume.pt.tmp-*")  # what a kill mid-write leaves
    assert ckpt.load(folder / ckpt.RESUME_FILE)["round"] == 0
    assert 4 not in _history(request)["train/loss"]  # round 1 (step 4) died before logging

    seen_at_first_round: list[bool] = []
    run_trial(request, reporter=lambda m: seen_at_first_round.append(partial.exists()))
    assert seen_at_first_round and not any(seen_at_first_round)  # removed at the start
    history = _history(request)
    for key, steps in history.items():
        assert len(steps) == len(set(steps)), (key, steps)
    assert history["train/loss"] == [2, 4, 6]


def test_a_checkpoint_whose_run_the_store_lost_starts_afresh(tmp_path, caplog):
    """`mlflow.db` deleted and made again at the same place (experiment id 1 again): the
    checkpoint names a run this store never had. It is discarded with one warning and the
    trial runs afresh, instead of failing on every run."""
    from mlflow import MlflowClient

    failed = _attempt_elsewhere(tmp_path, fail_epoch=1)  # round 0's checkpoint is kept
    assert b"InjectedFailure" in failed.stderr, failed.stderr.decode()[-2000:]
    assert (tmp_path / "ck" / ckpt.RESUME_FILE).is_file()  # _request's checkpoint_dir
    (tmp_path / "mlflow.db").unlink()  # never opened in this process: no cached store
    again = _request(tmp_path, THREE_ROUNDS)
    assert again.execution.experiment_id == "1"  # as in the old store
    with caplog.at_level(logging.WARNING, logger="trainables.trainable"):
        result = run_trial(again)
    assert "test/age_mae" in result
    warnings = [r for r in caplog.records if "discarded the resume checkpoint" in r.message]
    assert len(warnings) == 1
    client = MlflowClient(again.execution.tracking_uri)
    (run,) = client.search_runs([again.execution.experiment_id])
    assert run.info.status == "FINISHED"
    assert _history(again)["train/loss"] == [2, 4, 6]  # from round 0, not after it
