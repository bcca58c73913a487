"""The trainable: one trial (or pretraining job) from a `TrialRequest` to an MLflow run.

`run_trial(request)` works without Ray (debugging, benchmarks); `tune_trainable` is the
Ray Tune function, which resumes from Tune's last checkpoint on a retry. Every setting
comes from the request's typed `TrialConfig` and `Execution`: nothing here has a default.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import trainables.checkpoint as ckpt
from mtl_core import contract as C
from mtl_core import resume
from mtl_core.trial import TUNE_CONFIG_KEY, TrialRequest
from trainables.affinity import AffinityProbe, probe_for
from trainables.batches import StepBatches
from trainables.loop import evaluate, train_one_epoch
from trainables.metrics import selection_score
from trainables.models import build_model
from trainables.models.multitask import MultiTaskNet
from trainables.objective import objective as score_objective
from trainables.optim import build_optimizer, build_scheduler
from trainables.prefetch import prefetch
from trainables.pretrained import fetch_pretrained
from trainables.step import StepContext
from trainables.trial_data import TrialData, load_data, resolve_sources
from trainables.trial_run import RunGone, TrialRun, config_yaml
from trainables.weighting import Weighting, build_weighting

Reporter = Callable[[dict[str, Any]], None]
log = logging.getLogger(__name__)


class InjectedFailure(RuntimeError):
    """Raised on purpose by `debug.fail_tasks` (tests of failure handling)."""


def resolve_device(name: str, gpus: float) -> torch.device:
    """`auto` is CUDA if the trial asked for a GPU (`gpus`, resources.gpu) and one is
    present, else MPS, else CPU; anything else is passed to torch."""
    if name == "auto":
        # Without a GPU share, Ray reserved none: every trial on the card would oversubscribe it.
        if gpus > 0 and torch.cuda.is_available():
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


def run_trial(request: TrialRequest, reporter: Reporter | None = None) -> dict[str, float]:
    """Train, select on val, test the best checkpoint, and log it all to MLflow.

    After every round the trial's state goes to `execution.checkpoint_dir`; a later
    attempt (a Tune retry, or the next `run` after an interruption) finds it there by key
    and continues after that round, in the same MLflow run. The checkpoint is removed
    when the trial finishes. On any exception the run ends FAILED with tag
    mtl_sweep.error, and the exception propagates; when Ray Tune stops the trial
    (SystemExit from its report: a signal, a scheduler) the run ends KILLED. `reporter`
    receives each round's metrics (Ray Tune's report, under Tune).
    """
    started = time.perf_counter()
    ex = request.execution
    folder = Path(ex.checkpoint_dir) if ex.checkpoint_dir else None
    tracker, state = _open_run(request, folder)
    try:
        with tracker.system_metrics():
            session = _setup(request, tracker, state)
            if state is not None and "metrics" in state:
                # The checkpoint's own round: saved before it was logged, so the attempt
                # that wrote it may have died in between.
                tracker.log_missing(state["metrics"], state["metric_step"], state["logged_at"])
            _fit(session, request, tracker, reporter, folder)
            result = _test(session, request, tracker, reporter, started)
    except (KeyboardInterrupt, SystemExit):
        tracker.stop()
        raise
    except BaseException as exc:
        tracker.fail(exc)
        raise
    tracker.finish(request.key, request.config.kind)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _open_run(request: TrialRequest, folder: Path | None) -> tuple[TrialRun, dict | None]:
    """The trial's MLflow run and the checkpoint it continues (None: a fresh start).

    Temporaries of a save that died are removed first. A checkpoint whose run the store
    no longer has (a new store at the same place, a deleted run) is discarded with one
    warning, and the trial starts afresh in a new run.
    """
    ex = request.execution
    state = None
    if folder is not None:
        resume.remove_partials(folder)
        path = folder / ckpt.RESUME_FILE
        state = ckpt.load(path) if path.is_file() else None
    args = (ex.tracking_uri, ex.experiment_id, request.name, request.tags)
    if state is not None:
        try:
            return TrialRun(*args, state["mlflow_run_id"], ex.store_deadline_s), state
        except RunGone as gone:
            log.warning(
                "discarded the resume checkpoint of trial %s: its MLflow run %s is not in "
                "this store; the trial starts afresh",
                request.key,
                gone,
            )
            assert folder is not None
            resume.discard(folder)
    tracker = TrialRun(*args, give_up_s=ex.store_deadline_s)
    if folder is not None:
        resume.write_owner(folder, tracker.run_id)
    return tracker, None


@dataclass
class Session:
    """Everything one attempt trains with, built by `_setup`."""

    model: MultiTaskNet
    weighting: Weighting
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    data: TrialData
    ctx: StepContext
    resumed: bool
    rounds: list[Round]
    affinity: AffinityProbe | None = None  # train.affinity: TAG's lookahead, on copies
    start_round: int = 0
    best_score: float = math.inf
    best_step: int = -1  # the metric step (epoch, or optimizer step) of the best weights
    best_state: dict[str, torch.Tensor] | None = None
    best_objective: float = -math.inf  # tuned sweeps: the best round's search objective


@dataclass(frozen=True)
class Round:
    """A stretch of training followed by validation: an epoch, or `eval_every` steps."""

    index: int
    first_step: int  # optimizer steps before it
    steps: int
    metric_step: int  # MLflow step of its metrics: the epoch (per_epoch), else its last step


def plan_rounds(
    data: TrialData, per_epoch: bool, epochs: int, eval_every: int | None
) -> list[Round]:
    """per_epoch: one round per epoch. matched: every `eval_every` steps (default about ten
    rounds per trial), the last one ending at the budget's final step."""
    total = data.total_steps
    if per_epoch:
        n = int(data.steps_per_epoch)
        return [Round(e, e * n, n, e) for e in range(epochs)]
    every = eval_every or max(1, total // 10)
    starts = range(0, total, every)
    return [Round(i, s, min(every, total - s), min(s + every, total)) for i, s in enumerate(starts)]


def _setup(
    request: TrialRequest,
    tracker: TrialRun,
    state: dict[str, Any] | None,
) -> Session:
    """Log the params, load the data, build model, weighting, optimizer and schedule."""
    # Over 60 lines on purpose: the trial's setup in the order its parts depend on each
    # other (data sizes the heads and the schedule; a resume state restores them all).
    cfg, ex = request.config, request.execution
    torch.set_num_threads(ex.threads)
    seed_everything(cfg.seed)
    device = resolve_device(ex.device, ex.gpus)
    tracker.log_params(
        {**C.flatten_params(cfg.identity()), **ex.params(), "trial_key": request.key}
    )
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    # What Ray assigned (fractional GPUs share one id); "unset" outside Ray or without GPUs.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    tracker.set_tags({"mtl_sweep.device": where, "mtl_sweep.cuda_visible_devices": visible})
    if not tracker.resumed:
        tracker.log_text(config_yaml(request), C.CONFIG_ARTIFACT)
    data = load_data(cfg, Path(ex.cache_dir))
    # What the trial trained and was judged on, and what its sources dropped (bad labels,
    # corrupt images, ...): `data check` shows the same counts before a run.
    tracker.set_tags({"mtl_sweep.budget": data.describe(), "mtl_sweep.data_drops": data.drops()})
    if not tracker.resumed:
        metrics = {**data.budget_metrics(), **data.data_metrics(), **data.trivial}
        tracker.log_metrics(metrics, step=0)
    model = _model(request, tracker, data, state)
    model.to(device)
    cuda = device.type == "cuda"
    if cuda and ex.channels_last:
        model.to(memory_format=torch.channels_last)
    if ex.compile:
        model.compile()  # in place: state_dict keys and model.heads stay as they are
    options = getattr(cfg.train, cfg.weighting, None)  # e.g. train.dwa for dwa
    weighting = build_weighting(
        cfg.weighting, cfg.tasks, cfg.loss_weights, options.model_dump() if options else {}
    ).to(device)
    extra = weighting.optimizer_parameters()  # e.g. log-variances: trained, never decayed
    groups = [{"params": list(model.parameters())}]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    optimizer = build_optimizer(groups, cfg.train.optimizer, fused=device.type in ("cpu", "cuda"))
    scheduler = build_scheduler(
        optimizer, cfg.train.epochs, cfg.train.schedule, data.steps_per_epoch, cfg.matched
    )
    ctx = StepContext(
        device=device,
        amp=cuda and ex.amp,
        channels_last=cuda and ex.channels_last,
        augment=cfg.train.augment,
        workers=ex.workers,
        pin=cuda and ex.workers > 0,
    )
    rounds = plan_rounds(data, not cfg.matched, cfg.train.epochs, cfg.train.eval_every)
    probe = probe_for(request, state)
    session = Session(
        model, weighting, optimizer, scheduler, data, ctx, state is not None, rounds, probe
    )
    if state is not None:
        _restore(session, state)
    return session


def _model(
    request: TrialRequest, tracker: TrialRun, data: TrialData, state: dict[str, Any] | None
) -> MultiTaskNet:
    """The network; a fresh trial that names a pretraining job starts from its trunk."""
    cfg = request.config
    model = build_model(
        cfg.backbone,
        cfg.tasks,
        age_head=cfg.train.age_head,
        age_loss=cfg.train.age_loss,
        imagenet_weights=cfg.train.imagenet_weights,
        image_size=cfg.train.image_size,
        init_age=data.init_age,
        age_scale=data.age_scale,
    )
    if cfg.pretrain is not None and state is None:
        ex = request.execution
        path, run_id = fetch_pretrained(ex.tracking_uri, cfg.pretrain.key, Path(ex.cache_dir))
        loaded = ckpt.load_matching(model, ckpt.load(path))
        if "heads.age" in loaded:  # the downstream split's age scale, not the pretraining one
            model.heads["age"].restandardise(data.init_age, data.age_scale)
        tracker.set_tags({"mtl_sweep.pretrain_run": run_id, "mtl_sweep.init": ",".join(loaded)})
    return model


def _restore(session: Session, state: dict[str, Any]) -> None:
    """Continue an earlier attempt from its checkpoint."""
    session.model.load_state_dict(state["model"])
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    session.weighting.load_state_dict(state["weighting"])
    session.start_round = int(state["round"]) + 1
    session.best_score, session.best_step = float(state["best_score"]), int(state["best_step"])
    session.best_state = state["best_state"]
    session.best_objective = float(state.get("best_objective", -math.inf))
    ckpt.restore_rng(state["rng"])  # dropout masks etc. continue as if never stopped


def _fit(
    s: Session,
    request: TrialRequest,
    tracker: TrialRun,
    reporter: Reporter | None,
    folder: Path | None,
) -> None:
    """Train round by round, validate, keep the best-on-val weights, checkpoint each round.

    A round's checkpoint (with its metrics) is written before its metrics are logged, so a
    retry never logs a step twice: one that died before the checkpoint was in place
    trains the round again, one that died after it logs what is missing (run_trial).
    """
    cfg, ex = request.config, request.execution
    for r in s.rounds[s.start_round :]:
        # Injected once: a retry that resumed from a checkpoint goes on (tests of resume).
        if ex.fail_epoch is not None and r.index == ex.fail_epoch and not s.resumed:
            raise InjectedFailure(f"injected failure at round {r.index} (debug.fail_tasks)")
        s.ctx.generator = torch.Generator(device=s.ctx.device).manual_seed(
            cfg.seed * 100_003 + r.index
        )
        lr = s.optimizer.param_groups[0]["lr"]
        if isinstance(s.data.train, StepBatches):
            jobs = s.data.train.step_jobs(r.first_step, r.steps)
        else:
            jobs = s.data.train.epoch_jobs(r.index)
        batches = prefetch(jobs, s.ctx.workers, s.ctx.pin)  # train.workers threads ahead
        result = train_one_epoch(
            s.model, batches, s.weighting, s.optimizer, s.ctx, r.index, s.scheduler, s.affinity
        )
        s.weighting.end_epoch(result.task_loss)
        losses = ex.objective == "val_loss"
        val = evaluate(s.model, s.data.val, ex.eval_batch_size, s.ctx, losses=losses)
        score = selection_score(val, cfg.tasks, s.data.age_baseline)
        improved = score < s.best_score
        if improved:
            s.best_score, s.best_step, s.best_state = score, r.metric_step, ckpt.cpu_state(s.model)
        metrics = {
            f"{C.TRAIN}loss": result.loss,
            **{f"{C.TRAIN}{t}_loss": v for t, v in result.task_loss.items()},
            f"{C.TRAIN}lr": lr,
            f"{C.TRAIN}images_per_s": result.images_per_second,
            f"{C.TRAIN}data_wait_frac": result.data_seconds / max(result.seconds, 1e-9),
            **{f"{C.VAL}{k}": v for k, v in val.items()},
            f"{C.VAL}selection_score": score,
            **{f"{C.WEIGHT}{t}": w for t, w in s.weighting.weights().items()},
            "time/epoch_s": result.seconds,
            **(s.affinity.end_epoch() if s.affinity else {}),
            **_search_metrics(s, ex.objective, val, cfg.tasks, r),
        }
        stamp = int(time.time() * 1000)
        if folder is not None:
            # The test hook dies mid-save once: an attempt that resumed goes on.
            die = ex.kill_in_save == r.index and not s.resumed
            state = _state(s, r.index, tracker, improved)
            state.update(metrics=metrics, metric_step=r.metric_step, logged_at=stamp)
            ckpt.save(state, folder / ckpt.RESUME_FILE, die_midway=die)
        tracker.log_metrics(metrics, step=r.metric_step, timestamp_ms=stamp)
        if reporter is not None:
            reporter({**metrics, **_progress(r.index + 1, tracker), "step": r.metric_step})


def _search_metrics(
    s: Session, objective: str | None, val: dict[str, float], tasks, r: Round
) -> dict[str, float]:
    """A tuned sweep's round: search/objective (higher is better) and search/steps, the
    optimizer steps run so far (its last value is what the run spent, stopped or not)."""
    if objective is None:
        return {}
    value = score_objective(objective, val, s.data.trivial, tasks)
    if math.isfinite(value):
        s.best_objective = max(s.best_objective, value)
    return {C.SEARCH_OBJECTIVE: value, C.SEARCH_STEPS: r.first_step + r.steps}


def _progress(rounds_done: int, tracker: TrialRun, final: bool = False) -> dict[str, Any]:
    """What every report to Tune carries besides metrics: the rounds done (a scheduler's
    time attribute, which survives a restart from our own checkpoint), the MLflow run (the
    driver closes a run its scheduler stopped) and whether this is the final report."""
    return {
        "round": rounds_done - 1,
        "rounds_done": rounds_done,
        "run_id": tracker.run_id,
        "final": final,
    }


def _test(
    s: Session,
    request: TrialRequest,
    tracker: TrialRun,
    reporter: Reporter | None,
    started: float,
) -> dict[str, float]:
    """Test the best-on-val weights, log the final metrics and the checkpoint artifact."""
    cfg = request.config
    if s.best_state is None:
        raise RuntimeError(
            f"no round gave a finite val selection score for {','.join(cfg.tasks)}; "
            "check the val split with mtl-sweep data check"
        )
    s.model.load_state_dict(s.best_state)
    test = evaluate(s.model, s.data.test, request.execution.eval_batch_size, s.ctx)
    final = {f"{C.TEST}{k}": v for k, v in test.items()}
    final["best_step"] = s.best_step
    final.update(s.affinity.final_metrics() if s.affinity else {})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(C.CHECKPOINT_ARTIFACT).name
        ckpt.save(s.best_state, path)
        tracker.log_file(path, str(Path(C.CHECKPOINT_ARTIFACT).parent))
    # The trial's whole work, its checkpoint artifact included; only the last report and
    # ending the run come after.
    if request.execution.objective is not None:
        final[C.SEARCH_BEST] = s.best_objective
    final["time/trial_s"] = time.perf_counter() - started
    if tracker.resumed:  # an earlier attempt may have logged them before it died
        tracker.log_missing(final, step=s.best_step)
    else:
        tracker.log_metrics(final, step=s.best_step)
    if reporter is not None:
        # The scheduler's metric is in every report (the best round's, here).
        best = {C.SEARCH_OBJECTIVE: s.best_objective} if C.SEARCH_BEST in final else {}
        reporter({**final, **best, **_progress(len(s.rounds), tracker, final=True)})
    return final


def _state(s: Session, round_index: int, tracker: TrialRun, improved: bool) -> dict[str, Any]:
    """Everything a later attempt needs to continue after `round_index`, in one file.

    Saving is a few percent of a small trial (ResNet-18 with AdamW: about 180 MB a
    round), so nothing is copied or written twice: after a round that improved on val,
    the model's weights are the best weights, and torch.save writes the tensors they
    share once; otherwise a CPU model's own tensors are written as they are (training
    waits for the save).
    """
    if improved:
        model = s.best_state
    elif s.ctx.device.type == "cpu":
        model = s.model.state_dict()
    else:
        model = ckpt.cpu_state(s.model)
    return {
        "round": round_index,
        "model": model,
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "weighting": s.weighting.state_dict(),
        "best_score": s.best_score,
        "best_step": s.best_step,
        "best_state": s.best_state,
        "best_objective": s.best_objective,
        "mlflow_run_id": tracker.run_id,
        "rng": ckpt.rng_state(),
        "affinity": s.affinity.state_dict() if s.affinity else {},
    }


def tune_reporter(metrics: dict[str, Any]) -> None:
    """Report a round's metrics to Ray Tune (the checkpoint lives under the trial's key)."""
    from ray import tune

    tune.report(metrics)


def tune_trainable(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable; a retried trial resumes from its last checkpoint.

    The trial's data comes first, outside its clock and its run: on a cold start the
    driver is still rendering the synthetic faces when the first actors get here.
    """
    request: TrialRequest = config[TUNE_CONFIG_KEY]
    resolve_sources(request.config, Path(request.execution.cache_dir))
    run_trial(request, reporter=tune_reporter)
