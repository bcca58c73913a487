"""What the driver hands each trial: plain values, every path absolute, tags prebuilt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_sweep import contract as C
from mtl_sweep.expand import PretrainJob, Trial
from mtl_sweep.spec import Spec
from mtl_sweep.tasks import tasks_tag
from mtl_sweep.tasksets import expand_task_item


@dataclass(frozen=True)
class RunContext:
    """Where the sweep's trials log and read from."""

    spec: Spec
    tracking_uri: str  # absolute (see tracking_uri.resolve_tracking_uri)
    experiment_id: str
    parent_run_id: str | None
    cache_dir: Path

    def execution(self) -> dict[str, Any]:
        """Execution-only settings (never part of a key)."""
        train = self.spec.train
        return {
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "cache_dir": str(self.cache_dir),
            "device": train.device,
            "eval_batch_size": train.eval_batch_size,
            "workers": train.workers,
            "compile": train.compile,
            "amp": train.amp,
            "channels_last": train.channels_last,
            "threads": max(1, int(self.spec.resources.cpu)),
        }


def _tags(ctx: RunContext, kind: str, key: str, tasks, backbone, pretrain, weighting, seed):
    tags = {
        C.KIND: kind,
        C.SWEEP: ctx.spec.name,
        C.KEY: key,
        C.TASKS: tasks_tag(tasks),
        C.BACKBONE: backbone,
        C.PRETRAIN: pretrain,
        C.WEIGHTING: weighting,
        C.SEED: str(seed),
    }
    if ctx.parent_run_id:
        tags[C.PARENT] = ctx.parent_run_id
    return tags


def trial_payload(trial: Trial, ctx: RunContext) -> dict[str, Any]:
    """The payload for one trial (see trainables.trainable.run_trial)."""
    tags = _tags(
        ctx,
        C.KIND_TRIAL,
        trial.key,
        trial.tasks,
        trial.backbone,
        trial.pretrain,
        trial.weighting,
        trial.seed,
    )
    if trial.label:
        tags[C.LABEL] = trial.label
    if trial.pretrain_key:
        tags[C.PRETRAIN_KEY] = trial.pretrain_key
    run = ctx.execution()
    fail_sets = {ts for item in ctx.spec.debug.fail_tasks for ts in expand_task_item(item)}
    run["fail_epoch"] = ctx.spec.debug.fail_epoch if trial.tasks in fail_sets else None
    return {
        "kind": C.KIND_TRIAL,
        "key": trial.key,
        "name": trial.name,
        "label": trial.label,
        "tags": tags,
        "config": trial.config,
        "run": run,
    }


def job_payload(job: PretrainJob, ctx: RunContext) -> dict[str, Any]:
    """The payload for one pretraining job."""
    tags = _tags(
        ctx,
        C.KIND_PRETRAIN,
        job.key,
        job.tasks,
        job.backbone,
        job.stage,
        "fixed",
        job.config["seed"],
    )
    run = {**ctx.execution(), "fail_epoch": None}
    return {
        "kind": C.KIND_PRETRAIN,
        "key": job.key,
        "name": f"pretrain/{job.stage}/{job.backbone}/{tasks_tag(job.tasks)}",
        "label": None,
        "tags": tags,
        "config": job.config,
        "run": run,
    }
