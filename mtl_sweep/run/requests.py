"""What the driver hands each trial: a `TrialRequest` (config, execution, name, tags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mtl_core import contract as C
from mtl_core.resume import resume_dir
from mtl_core.tasks import expand_task_item, tasks_tag
from mtl_core.trial import Execution, TrialConfig, TrialRequest
from mtl_sweep.expand import PretrainJob, Trial
from mtl_sweep.run.fault_env import FaultSettings
from mtl_sweep.spec.redact import redact_uri
from mtl_sweep.spec.schema import Spec


@dataclass(frozen=True)
class RunContext:
    """Where the sweep's trials log and read from."""

    spec: Spec
    tracking_uri: str  # absolute (see store.uri.resolve_tracking_uri)
    experiment_id: str
    parent_run_id: str | None
    cache_dir: Path
    faults: FaultSettings = field(default_factory=FaultSettings)

    def checkpoint_dir(self, key: str) -> Path:
        """The resume checkpoint of the trial or job `key` (under the shared cache folder),
        of this store and experiment (mtl_core/resume.py)."""
        return resume_dir(self.cache_dir, self.tracking_uri, self.experiment_id, key)

    def uri_redactions(self) -> dict[str, str]:
        """{tracking URI: the same with its secret ${VAR}s unexpanded}, from the spec."""
        template = self.spec._redactions.get(("tracking", "uri"))
        if template is None or self.spec.tracking.uri is None:
            return {}
        return {self.spec.tracking.uri: template}

    def execution(
        self, key: str, fail_epoch: int | None = None, kill_in_save: int | None = None
    ) -> Execution:
        """The execution settings of trial `key` (never part of a key)."""
        train = self.spec.train
        return Execution(
            # Redacted: Tune persists trial configs. Trials get the real URI through
            # tune.with_parameters (runner._tuner), which keeps it in memory only.
            tracking_uri=redact_uri(self.tracking_uri, self.uri_redactions()),
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            cache_dir=str(self.cache_dir),
            device=train.device,
            eval_batch_size=train.eval_batch_size,
            workers=train.workers,
            compile=train.compile,
            amp=train.amp,
            channels_last=train.channels_last,
            threads=max(1, int(self.spec.resources.cpu)),
            affinity_every=train.affinity.every,
            affinity_params=train.affinity.params,
            fail_epoch=fail_epoch,
            kill_in_save=kill_in_save,
            store_deadline_s=self.faults.store_deadline_s,
            checkpoint_dir=str(self.checkpoint_dir(key)),
            gpus=self.spec.resources.gpu,
        )


def _tags(ctx: RunContext, config: TrialConfig, pretrain: str) -> dict[str, str]:
    tags = {
        C.KIND: config.kind,
        C.SWEEP: ctx.spec.name,
        C.KEY: config.key,
        C.TASKS: tasks_tag(config.tasks),
        C.BACKBONE: config.backbone,
        C.PRETRAIN: pretrain,
        C.WEIGHTING: config.weighting,
        C.SEED: str(config.seed),
    }
    if ctx.parent_run_id:
        tags[C.PARENT] = ctx.parent_run_id
    if config.label:
        tags[C.LABEL] = config.label
    if config.pretrain:
        tags[C.PRETRAIN_KEY] = config.pretrain.key
    return tags


def trial_request(trial: Trial, ctx: RunContext) -> TrialRequest:
    """The request for one trial (see trainables.trainable.run_trial)."""
    debug = ctx.spec.debug
    fail_sets = {ts for item in debug.fail_tasks for ts in expand_task_item(item)}
    fail_epoch = debug.fail_epoch if trial.config.tasks in fail_sets else None
    return TrialRequest(
        config=trial.config,
        execution=ctx.execution(trial.key, fail_epoch, ctx.faults.kill_in_save),
        name=trial.name,
        tags=_tags(ctx, trial.config, trial.pretrain),
    )


def job_request(job: PretrainJob, ctx: RunContext) -> TrialRequest:
    """The request for one pretraining job."""
    return TrialRequest(
        config=job.config,
        execution=ctx.execution(job.key),
        name=f"pretrain/{job.config.stage}/{job.config.backbone}/{tasks_tag(job.config.tasks)}",
        tags=_tags(ctx, job.config, job.config.stage),
    )
