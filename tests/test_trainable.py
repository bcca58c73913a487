"""The trainable called directly (no Ray): contract logging, masking, NaN guard, resume."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, trial_request
from mtl_sweep.spec.load import load_spec
from mtl_sweep.store.tracker import Tracker
from trainables.batches import Batch
from trainables.loop import NonFiniteLoss, train_one_epoch
from trainables.models import build_model
from trainables.step import StepContext, masked_losses
from trainables.trainable import InjectedFailure, resolve_device, run_trial
from trainables.weighting import build_weighting

from .conftest import SWEEPS

TINY = ["grid.pretrain=[none]", "train.epochs=2"]


def _context(tmp_path, spec):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment_id("direct", create=True)
    return tracker, RunContext(spec, uri, exp, None, tmp_path / "cache")


@pytest.mark.parametrize("tasks", ["[age]", "[all]"])
def test_a_trial_logs_the_contract(tmp_path, tasks):
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, f"grid.tasks={tasks}"])
    (trial,) = expand(spec).trials
    tracker, ctx = _context(tmp_path, spec)
    result = run_trial(trial_request(trial, ctx))
    (run,) = tracker.client.search_runs([ctx.experiment_id])
    assert run.info.status == "FINISHED"
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert tags[C.KIND] == C.KIND_TRIAL
    assert tags[C.KEY] == trial.key
    assert tags[C.TASKS] == "+".join(trial.config.tasks)
    assert tags[C.BACKBONE] == "shufflenet_v2_x0_5" and tags[C.PRETRAIN] == "none"
    assert tags[C.WEIGHTING] == "fixed" and tags[C.SEED] == "0"
    assert run.info.run_name == trial.name
    for task in trial.config.tasks:
        name = PRIMARY_METRIC[task].name
        assert metrics[f"test/{name}"] == pytest.approx(result[f"test/{name}"])
        assert params[f"loss_weight.{task}"] == "1"
        history = tracker.client.get_metric_history(run.info.run_id, f"val/{name}")
        # Matched budget: S = 2 epochs x 48 age images / 16 per step = 6 steps, validated
        # every max(1, S // 10) = 1 step; metrics are logged at the optimizer step.
        assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]
        assert f"weight/{task}" in metrics
        assert metrics[f"budget/{task}_images"] == 6 * 16
        assert metrics[f"budget/{task}_passes"] == pytest.approx(6 * 16 / 48)
    assert metrics["budget/steps"] == 6
    assert "test/age_eps" in metrics  # ChaLearn-format data carries a per-image std
    artifacts = {a.path for a in tracker.client.list_artifacts(run.info.run_id)}
    assert C.CONFIG_ARTIFACT in artifacts


def test_an_injected_failure_ends_the_run_failed_and_a_resume_continues_it(tmp_path):
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, "grid.tasks=[age]"])
    (trial,) = expand(spec).trials
    tracker, ctx = _context(tmp_path, spec)
    request = trial_request(trial, ctx)
    execution = replace(request.execution, fail_epoch=1, checkpoint_dir=str(tmp_path / "ck"))
    request = replace(request, execution=execution)
    with pytest.raises(InjectedFailure):
        run_trial(request)
    assert (tmp_path / "ck" / "resume.pt").is_file()  # round 0's state, kept for a retry
    (run,) = tracker.client.search_runs([ctx.experiment_id])
    assert run.info.status == "FAILED"
    assert (
        run.data.tags[C.ERROR]
        .splitlines()[-1]
        .startswith("trainables.trainable.InjectedFailure: injected failure at round 1")
    )

    run_trial(request)  # a retry: finds the checkpoint by its key's folder
    (resumed,) = tracker.client.search_runs([ctx.experiment_id])
    assert resumed.info.run_id == run.info.run_id  # the same run, not a new one
    assert resumed.info.status == "FINISHED"
    assert C.ERROR not in resumed.data.tags
    history = tracker.client.get_metric_history(run.info.run_id, "train/loss")
    # Rounds of one step each (S = 6): round 0 ends at step 1 and was not trained twice.
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]
    assert not (tmp_path / "ck").exists()  # a finished trial leaves no checkpoint behind


def _batch(mask_age, mask_gender):
    torch.manual_seed(0)
    n = len(mask_age)
    return Batch(
        images=torch.randint(0, 255, (n, 3, 16, 16), dtype=torch.uint8),
        labels={
            "age": torch.tensor([20.0, float("nan"), 60.0, 30.0][:n]),
            "gender": torch.tensor([1.0, 0.0, float("nan"), 1.0][:n]),
        },
        mask={"age": torch.tensor(mask_age), "gender": torch.tensor(mask_gender)},
        age_std=torch.full((n,), float("nan")),
    )


def test_a_trial_logs_what_its_sources_dropped(tmp_path):
    # The drops were visible in `data check` only: the run itself had no trace of them.
    from .hostile import csv_source

    root = tmp_path / "csv"
    extra = ["missing.jpg,1,0,train", "train0.jpg,x,0,train", "train1.jpg,,,train"]
    csv_source(root, extra, good=4)
    overrides = [*TINY, "grid.tasks=[gender]", f"data.gender={{kind: csv, root: {root}}}"]
    spec = load_spec(SWEEPS / "smoke.yaml", overrides)
    (trial,) = expand(spec).trials
    tracker, ctx = _context(tmp_path, spec)
    run_trial(trial_request(trial, ctx))
    (run,) = tracker.client.search_runs([ctx.experiment_id])
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["data/gender_train_images"] == 4 and metrics["data/gender_val_images"] == 4
    assert metrics["data/gender_train_dropped"] == 3 and metrics["data/gender_test_dropped"] == 0
    drops = tags["mtl_sweep.data_drops"]
    assert drops.startswith(f"csv at {root} (train): ") and "missing_file 1" in drops, drops


def test_auto_takes_cuda_only_for_a_trial_that_asked_ray_for_a_gpu(monkeypatch):
    # Ray leaves CUDA_VISIBLE_DEVICES alone for a trial with no GPU share: `auto` picking
    # the card anyway put every CPU-scheduled trial on it, unaccounted.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto", 0).type == "cpu"
    assert resolve_device("auto", 0.25).type == "cuda"
    assert resolve_device("cpu", 1).type == "cpu"
    spec = load_spec(SWEEPS / "smoke.yaml", ["resources.gpu=0.5"])
    ctx = RunContext(spec, "sqlite://", "1", None, Path("/c"))
    request = trial_request(expand(spec).trials[0], ctx)
    assert request.execution.gpus == 0.5 and request.execution.params()["run.gpus"] == "0.5"


def test_masked_losses_ignore_missing_labels():
    torch.manual_seed(0)
    model = build_model("resnet18", ["age", "gender"], image_size=16).eval()
    batch = _batch([True, False, True, True], [True, True, False, False])
    x = batch.images.float() / 255
    out = model(x)
    losses, counts = masked_losses(model, out, batch, torch.device("cpu"))
    assert counts == {"age": 3, "gender": 2}
    keep = torch.tensor([True, False, True, True])
    expected = model.heads["age"].loss(out["age"][keep], batch.labels["age"][keep])
    assert float(losses["age"].detach()) == pytest.approx(float(expected.detach()))
    assert math.isfinite(float(losses["age"].detach()))  # the NaN label never reached the loss

    none = _batch([False] * 4, [True, True, False, False])
    losses, counts = masked_losses(model, out, none, torch.device("cpu"))
    assert "age" not in losses and "age" not in counts  # contributes nothing


def test_a_nan_loss_stops_with_an_error_naming_task_and_epoch():
    model = build_model("resnet18", ["age", "gender"], image_size=16)
    with torch.no_grad():
        model.heads["gender"].fc.weight.fill_(float("nan"))
    weighting = build_weighting("fixed", ["age", "gender"], {"age": 1.0, "gender": 1.0}, {})
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    batch = _batch([True, False, True, True], [True, True, False, False])
    with pytest.raises(NonFiniteLoss, match="loss of task gender is nan in epoch 3"):
        train_one_epoch(model, [batch], weighting, opt, StepContext(torch.device("cpu")), 3)


def test_a_rerun_supersedes_the_older_finished_run_of_its_key(tmp_path):
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, "grid.tasks=[age]", "train.epochs=1"])
    (trial,) = expand(spec).trials
    tracker, ctx = _context(tmp_path, spec)
    request = trial_request(trial, ctx)
    run_trial(request)
    run_trial(request)  # what --rerun does
    runs = tracker.client.search_runs([ctx.experiment_id], order_by=["attributes.start_time"])
    old, new = runs[0], runs[-1]
    assert [r.info.status for r in (old, new)] == ["KILLED", "FINISHED"]
    assert old.data.tags[C.SUPERSEDED_BY] == new.info.run_id
    finished = tracker.finished_runs(trial.key, C.KIND_TRIAL)
    assert [r.info.run_id for r in finished] == [new.info.run_id]
