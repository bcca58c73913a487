"""The trainable: one trial (or pretraining job) from plain values to an MLflow run.

`run_trial(payload)` works without Ray (debugging, benchmarks); `tune_trainable` is the
Ray Tune function, which resumes from Tune's last checkpoint on a retry. The payload is
built by `mtl_sweep.payload`: kind, key, canonical config, run name, tags, and
execution settings under "run".
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl_sweep import contract as C
from mtl_sweep.errors import DataError
from trainables import checkpoint as ckpt
from trainables.data import CachedSplit, MultiSourceBatches, load_split, prefetch, resolve_source
from trainables.loop import StepContext, evaluate, train_one_epoch
from trainables.metrics import selection_score
from trainables.models import build_model
from trainables.optim import build_optimizer, build_scheduler
from trainables.pretrained import fetch_pretrained
from trainables.trial_run import TrialRun, config_yaml
from trainables.weighting import build_weighting

Reporter = Callable[[dict[str, Any], Path | None], None]
# Execution settings: not part of the key, but logged as run.* params so a run says where
# and how it ran.
EXECUTION_PARAMS = (
    "device",
    "amp",
    "channels_last",
    "workers",
    "compile",
    "threads",
    "eval_batch_size",
)
Parts = list[tuple[CachedSplit, tuple[str, ...]]]


class InjectedFailure(RuntimeError):
    """Raised on purpose by `debug.fail_tasks` (tests of failure handling)."""


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA if present, else MPS, else CPU; anything else is passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrialData:
    """The splits one trial reads, grouped by source."""

    train: MultiSourceBatches
    val: Parts
    test: Parts
    init_age: float  # train-set mean age, years (the regression head's starting point)
    age_scale: float  # train-set std of ages, years (the regression head's loss scale)
    age_baseline: float  # val MAE of predicting init_age for every image


def load_data(payload: Mapping[str, Any], image_size: int, cache_dir: Path) -> TrialData:
    """Resolve the trial's sources (only its own tasks'), load splits, build the batches."""
    cfg = payload["config"]
    tasks = tuple(cfg["tasks"])
    by_source: dict[Any, list[str]] = {}
    for task in tasks:
        source = cfg["source"] if payload["kind"] == C.KIND_PRETRAIN else cfg["data"][task]
        role = "pretrain" if payload["kind"] == C.KIND_PRETRAIN else task
        by_source.setdefault(resolve_source(source, role, cache_dir), []).append(task)
    parts = {
        split: [
            (load_split(src, split, image_size, cache_dir), tuple(ts))
            for src, ts in by_source.items()
        ]
        for split in ("train", "val", "test")
    }
    for split in ("val", "test"):
        empty = [s.source for s, _ in parts[split] if len(s) == 0]
        if empty:
            raise DataError(f"no usable {split} images in {empty[0]}; run mtl-sweep data check")
    train = cfg["train"]
    batches = MultiSourceBatches(
        parts["train"],
        batch_size=train["batch_size"],
        epoch_rule=cfg.get("epoch_rule", "longest"),
        seed=cfg["seed"],
        steps_per_epoch=train.get("steps_per_epoch"),
    )
    init_age, scale, baseline = 35.0, 20.0, math.nan
    if "age" in tasks:
        ages = np.concatenate([s.labels["age"] for s, ts in parts["train"] if "age" in ts])
        init_age, scale = float(np.nanmean(ages)), float(np.nanstd(ages))
        val_ages = np.concatenate([s.labels["age"] for s, ts in parts["val"] if "age" in ts])
        baseline = float(np.nanmean(np.abs(val_ages - init_age)))
    return TrialData(batches, parts["val"], parts["test"], init_age, scale, baseline)


def run_trial(
    payload: Mapping[str, Any],
    reporter: Reporter | None = None,
    resume_dir: Path | None = None,
    work_dir: Path | None = None,
) -> dict[str, float]:
    """Train, select on val, test the best checkpoint, and log it all to MLflow.

    `resume_dir` holds a checkpoint from an earlier attempt (Tune's, on a retry);
    training continues after its epoch, in the same MLflow run. Without a reporter
    (direct call), checkpoints go to `work_dir/checkpoint`. On any exception the run
    ends FAILED with tag mtl_sweep.error, and the exception propagates.
    """
    started = time.perf_counter()
    run = payload["run"]
    state = ckpt.load(resume_dir / ckpt.STATE_FILE) if resume_dir else None
    tracker = TrialRun(
        run["tracking_uri"],
        run["experiment_id"],
        payload["name"],
        payload["tags"],
        resume_run_id=state["mlflow_run_id"] if state else None,
    )
    try:
        with tracker.system_metrics():
            result = _train(payload, tracker, reporter, state, resume_dir, work_dir, started)
    except BaseException as exc:
        tracker.fail(exc)
        raise
    tracker.finish(payload["key"], payload["kind"])
    return result


def _train(
    payload: Mapping[str, Any],
    tracker: TrialRun,
    reporter: Reporter | None,
    state: dict[str, Any] | None,
    resume_dir: Path | None,
    work_dir: Path | None,
    started: float,
) -> dict[str, float]:
    cfg, run = payload["config"], payload["run"]
    train_cfg, tasks, seed = cfg["train"], tuple(cfg["tasks"]), int(cfg["seed"])
    torch.set_num_threads(max(1, int(run.get("threads", 1))))
    seed_everything(seed)
    device = resolve_device(run.get("device", "auto"))
    cache_dir = Path(run["cache_dir"])

    execution = {f"run.{k}": run.get(k) for k in EXECUTION_PARAMS if k in run}
    tracker.log_params({**C.flatten_params(cfg), **execution, "trial_key": payload["key"]})
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    # What Ray assigned (fractional GPUs share one id); "unset" outside Ray or without GPUs.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    tracker.set_tags({"mtl_sweep.device": where, "mtl_sweep.cuda_visible_devices": visible})
    if not tracker.resumed:
        tracker.log_text(config_yaml(payload), C.CONFIG_ARTIFACT)
    data = load_data(payload, train_cfg["image_size"], cache_dir)
    tracker.set_tags({"mtl_sweep.epoch_length": data.train.describe()})

    model = build_model(
        cfg["backbone"],
        tasks,
        age_head=train_cfg.get("age_head", "regression"),
        age_loss=train_cfg.get("age_loss", "l1"),
        imagenet_weights=train_cfg["imagenet_weights"],
        image_size=train_cfg["image_size"],
        init_age=data.init_age,
        age_scale=data.age_scale,
    )
    if cfg.get("pretrain") and state is None:
        path, run_id = fetch_pretrained(run["tracking_uri"], cfg["pretrain"]["key"], cache_dir)
        loaded = ckpt.load_matching(model, ckpt.load(path))
        tracker.set_tags({"mtl_sweep.pretrain_run": run_id, "mtl_sweep.init": ",".join(loaded)})
    model.to(device)
    cuda = device.type == "cuda"
    if cuda and run.get("channels_last", True):
        model.to(memory_format=torch.channels_last)
    if run.get("compile"):
        model.compile()  # in place: state_dict keys and model.heads stay as they are

    options = train_cfg.get(cfg["weighting"], {})
    weighting = build_weighting(cfg["weighting"], tasks, cfg["loss_weights"], options).to(device)
    extra = weighting.optimizer_parameters()  # e.g. log-variances: trained, never decayed
    groups = [{"params": list(model.parameters())}]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    fused = device.type in ("cpu", "cuda")
    optimizer = build_optimizer(groups, train_cfg["optimizer"], fused=fused)
    epochs = int(train_cfg["epochs"])
    scheduler = build_scheduler(optimizer, epochs, train_cfg["schedule"])

    start_epoch, best_score, best_epoch, best_state = 0, math.inf, -1, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        weighting.load_state_dict(state["weighting"])
        start_epoch = int(state["epoch"]) + 1
        best_score, best_epoch = float(state["best_score"]), int(state["best_epoch"])
        best_state = ckpt.load(resume_dir / ckpt.BEST_FILE)

    ctx = StepContext(
        device=device,
        amp=cuda and run.get("amp", True),
        channels_last=cuda and run.get("channels_last", True),
        augment=train_cfg.get("augment"),
        workers=int(run.get("workers", 0)),
        pin=cuda and int(run.get("workers", 0)) > 0,
    )
    fail_epoch = run.get("fail_epoch")
    eval_batch = int(run.get("eval_batch_size", 256))
    last: dict[str, float] = {}
    for epoch in range(start_epoch, epochs):
        # Injected once: a retry that resumed from a checkpoint goes on (tests of resume).
        if fail_epoch is not None and epoch == fail_epoch and state is None:
            raise InjectedFailure(f"injected failure at epoch {epoch} (debug.fail_tasks)")
        ctx.generator = torch.Generator(device=device).manual_seed(seed * 100_003 + epoch)
        lr = optimizer.param_groups[0]["lr"]
        batches = prefetch(data.train.epoch_jobs(epoch), ctx.workers, ctx.pin)
        result = train_one_epoch(model, batches, weighting, optimizer, ctx, epoch)
        weighting.end_epoch(result.task_loss)
        scheduler.step()
        val = evaluate(model, data.val, eval_batch, ctx)
        score = selection_score(val, tasks, data.age_baseline)
        if score < best_score:
            best_score, best_epoch, best_state = score, epoch, ckpt.cpu_state(model)
        last = {
            f"{C.TRAIN}loss": result.loss,
            **{f"{C.TRAIN}{t}_loss": v for t, v in result.task_loss.items()},
            f"{C.TRAIN}lr": lr,
            f"{C.TRAIN}images_per_s": result.images_per_second,
            f"{C.TRAIN}data_wait_frac": result.data_seconds / max(result.seconds, 1e-9),
            **{f"{C.VAL}{k}": v for k, v in val.items()},
            f"{C.VAL}selection_score": score,
            **{f"{C.WEIGHT}{t}": w for t, w in weighting.weights().items()},
            "time/epoch_s": result.seconds,
        }
        tracker.log_metrics(last, step=epoch)
        _checkpoint(
            reporter,
            work_dir,
            {**last, "epoch": epoch, "final": False},
            {
                "epoch": epoch,
                "model": ckpt.cpu_state(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "weighting": weighting.state_dict(),
                "best_score": best_score,
                "best_epoch": best_epoch,
                "mlflow_run_id": tracker.run_id,
            },
            best_state,
        )

    if best_state is None:
        raise RuntimeError(
            f"no epoch gave a finite val selection score for {','.join(tasks)}; "
            "check the val split with mtl-sweep data check"
        )
    model.load_state_dict(best_state)
    test = evaluate(model, data.test, eval_batch, ctx)
    final = {f"{C.TEST}{k}": v for k, v in test.items()}
    final["best_epoch"] = best_epoch
    final["time/trial_s"] = time.perf_counter() - started
    tracker.log_metrics(final, step=best_epoch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(C.CHECKPOINT_ARTIFACT).name
        ckpt.save(best_state, path)
        tracker.log_file(path, str(Path(C.CHECKPOINT_ARTIFACT).parent))
    if reporter is not None:
        reporter({**final, "epoch": epochs - 1, "final": True}, None)
    return final


def _checkpoint(
    reporter: Reporter | None,
    work_dir: Path | None,
    metrics: dict[str, Any],
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
) -> None:
    """Write state.pt and best.pt, and hand them to Tune (or keep them in work_dir)."""
    if reporter is None:
        if work_dir is None:
            return
        target = work_dir / "checkpoint"
        ckpt.save(state, target / ckpt.STATE_FILE)
        ckpt.save(best_state, target / ckpt.BEST_FILE)
        return
    tmp = Path(tempfile.mkdtemp(prefix="mtl-ckpt-"))
    try:
        ckpt.save(state, tmp / ckpt.STATE_FILE)
        ckpt.save(best_state, tmp / ckpt.BEST_FILE)
        reporter(metrics, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tune_reporter(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    """Report to Ray Tune; Tune persists the checkpoint directory to its storage."""
    from ray import tune

    checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
    tune.report(metrics, checkpoint=checkpoint)


def tune_trainable(payload: dict[str, Any]) -> None:
    """The Ray Tune function trainable; a retried trial resumes from its last checkpoint."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run_trial(payload["payload"], reporter=tune_reporter)
        return
    with checkpoint.as_directory() as resume:
        run_trial(payload["payload"], reporter=tune_reporter, resume_dir=Path(resume))
