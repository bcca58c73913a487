"""The typed hand-off from the orchestrator to the trainable.

`TrialConfig` is built once, at expansion, and holds every resolved setting that can change
what a trial (or pretraining job) trains: tasks, backbone, weighting, seed, the full
`TrainSettings` and the resolved sources (roots absolute). Its key is a projection of it
(`identity`): settings that do not apply are left out of the projection, never out of the
config, so no code below the spec supplies a default and a defaulted setting cannot move a
key. `Execution` holds where and how it runs (never in the key); `TrialRequest` is what
travels to the trainable through Ray.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mtl_core.contract as C
from mtl_core.settings import TrainSettings
from mtl_core.sources import SYNTHETIC_FORMAT, Source

KEY_LENGTH = 12  # hex characters of sha256; collisions are negligible at sweep sizes
TUNE_CONFIG_KEY = "request"  # a Ray Tune trial's config holds its TrialRequest under this key


def trial_key(identity: Mapping[str, Any]) -> str:
    """Short hash of an identity: sha256 of its sorted-key JSON."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class PretrainRef:
    """The pretraining job a trial starts from."""

    stage: str
    key: str


@dataclass(frozen=True)
class TrialConfig:
    """Everything that decides what one trial or pretraining job trains, fully resolved."""

    kind: str  # contract.KIND_TRIAL, KIND_SEARCH or KIND_PRETRAIN
    tasks: tuple[str, ...]  # canonical order
    backbone: str
    weighting: str
    loss_weights: Mapping[str, float]  # over `tasks`
    seed: int
    train: TrainSettings
    sources: Mapping[str, Source]  # task -> source, roots absolute (a job: its stage's source)
    epoch_rule: str = "longest"  # per_epoch budgets: how an epoch is sized over sources
    # matched budgets sized by epochs: the reference task's source (its train split sizes S)
    budget_source: Source | None = None
    pretrain: PretrainRef | None = None  # trials only: the job whose trunk they start from
    stage: str | None = None  # pretraining jobs only: the stage's name
    label: str | None = None  # reference-model label (not part of the identity)

    @property
    def matched(self) -> bool:
        """True under the matched budget (the same steps S for every compared trial)."""
        return self.train.budget.rule == "matched"

    @property
    def is_pretrain(self) -> bool:
        """True for a pretraining job."""
        return self.kind == C.KIND_PRETRAIN

    @cached_property
    def key(self) -> str:
        """The trial key: a hash of `identity()`."""
        return trial_key(self.identity())

    def identity(self) -> dict[str, Any]:
        """The projection that decides what counts as the same trial (see module docstring).

        Pinned for the shipped specs by tests/test_trial_keys.py: a change here reruns trials.
        """
        train = train_identity(self.train, self.tasks, self.weighting)
        if self.matched and self.train.budget.steps is None:
            assert self.budget_source is not None, "expansion resolves the budget source"
            train["budget"]["reference_source"] = _dump(self.budget_source)
        if self.is_pretrain:
            (source,) = {json.dumps(_dump(s), sort_keys=True) for s in self.sources.values()}
            return {
                "stage": self.stage,
                "backbone": self.backbone,
                "tasks": list(self.tasks),
                "weighting": self.weighting,
                "loss_weights": dict(self.loss_weights),
                "seed": self.seed,
                "train": train,
                "source": json.loads(source),
            }
        out: dict[str, Any] = {
            "tasks": list(self.tasks),
            "backbone": self.backbone,
            "weighting": self.weighting,
            "loss_weights": dict(self.loss_weights),
            "seed": self.seed,
            "train": train,
            "data": {t: _dump(self.sources[t]) for t in self.tasks},
            "pretrain": {"stage": self.pretrain.stage, "key": self.pretrain.key}
            if self.pretrain
            else None,
        }
        if not self.matched and len(self.source_groups()) > 1:
            out["epoch_rule"] = self.epoch_rule  # only matters across sources
        if self.kind == C.KIND_SEARCH:  # never the same run as a final trial of its values
            out["kind"] = C.KIND_SEARCH
        return out

    def source_groups(self) -> dict[str, tuple[str, ...]]:
        """Tasks grouped by what their loader reads (gender and smile share CelebA)."""
        groups: dict[str, list[str]] = {}
        for task in self.tasks:
            ident = dict(_dump(self.sources[task]))
            if ident["kind"] == "synthetic":
                ident["format"] = SYNTHETIC_FORMAT["pretrain" if self.is_pretrain else task]
            groups.setdefault(json.dumps(ident, sort_keys=True), []).append(task)
        return {k: tuple(v) for k, v in groups.items()}

    def role(self, task: str) -> str:
        """The format role a task's source is read in: the task, or "pretrain" for a job."""
        return "pretrain" if self.is_pretrain else task

    @property
    def budget_reference(self) -> tuple[Source, str] | None:
        """The source and format role whose train split sizes a matched budget given in
        epochs (mtl_core/budget.py); None when the budget gives its steps or is per_epoch."""
        budget = self.train.budget
        if not self.matched or budget.steps is not None:
            return None
        assert self.budget_source is not None and budget.reference is not None
        return self.budget_source, "pretrain" if self.is_pretrain else budget.reference


def train_identity(train: TrainSettings, tasks: tuple[str, ...], weighting: str) -> dict[str, Any]:
    """The train settings that can change this trial's result, and only those."""
    out = dict(_dump(train))
    for part in ("budget", "optimizer", "schedule"):  # changed below: copies, not the memo's
        out[part] = dict(out[part])
    if train.budget.rule == "per_epoch":
        # The rule before budgets existed: its keys stay those of runs made before them.
        out.pop("budget")
        out.pop("eval_every")
    else:
        out.pop("steps_per_epoch")
        if train.budget.steps is not None:
            out["budget"].pop("reference")  # S is given: no split sizes it
    for strategy in ("dwa", "gradnorm"):
        if weighting != strategy:
            out.pop(strategy)
    if train.optimizer.name != "sgd":
        out["optimizer"].pop("momentum")
    if train.schedule.name != "step":
        out["schedule"].pop("step_size")
        out["schedule"].pop("gamma")
    if "age" not in tasks:
        out.pop("age_head")
        out.pop("age_loss")
    elif train.age_head == "dex":
        out.pop("age_loss")
    return out


# Trials share their settings and source objects (expansion resolves each once), and
# dumping a pydantic model is most of the cost of a key: dump each object once. The memo
# holds the objects, so an id is not reused while its entry lives.
_DUMPS: dict[int, tuple[Any, dict[str, Any]]] = {}
_DUMPS_KEPT = 512


def _dump(model: Source | TrainSettings) -> dict[str, Any]:
    """`model.model_dump(mode="json")`, memoized by identity; callers copy what they change."""
    hit = _DUMPS.get(id(model))
    if hit is None or hit[0] is not model:
        if len(_DUMPS) >= _DUMPS_KEPT:
            _DUMPS.clear()
        hit = _DUMPS[id(model)] = (model, model.model_dump(mode="json"))
    return hit[1]


@dataclass(frozen=True)
class Execution:
    """Where and how a trial runs. Never part of its key; logged as `run.*` params."""

    tracking_uri: str  # absolute
    experiment_id: str
    parent_run_id: str | None
    cache_dir: str  # absolute: trials run in another working directory
    device: str  # auto, cpu, mps, cuda[:N]
    eval_batch_size: int
    workers: int  # threads gathering batches ahead of the model (pinned on CUDA)
    compile: bool  # torch.compile the model
    amp: bool  # bf16 autocast on CUDA
    channels_last: bool  # on CUDA
    threads: int  # torch intra-op threads
    affinity_every: int | None = None  # train.affinity.every: TAG lookahead every N steps
    affinity_params: str = "trunk"  # train.affinity.params: what the lookahead steps
    fail_epoch: int | None = None  # debug.fail_tasks: raise once at this round
    # $MTL_SWEEP_DEBUG_KILL_IN_SAVE: SIGKILL the trial's process half-way through writing
    # this round's checkpoint, in an attempt that did not resume (tests of resume).
    kill_in_save: int | None = None
    # $MTL_SWEEP_STORE_DEADLINE_S: an attempt gives up on a tracking store that stays
    # unreachable this long, MLflow's own HTTP retries included (trainables/store_retry.py).
    store_deadline_s: float = 600.0
    # Where the trial keeps its resume checkpoint (absolute; shared by every node), found
    # by key: a retry, or the next `run` after an interruption, continues from it.
    checkpoint_dir: str | None = None
    # resources.gpu: what the trial asked Ray for. `auto` takes CUDA only with a share of a
    # GPU: Ray (2.60 here; ray-project/ray#54868) leaves CUDA_VISIBLE_DEVICES alone for a
    # trial that asked for none.
    gpus: float = 0.0
    # Tuned sweeps: the search objective (relative, val_loss) logged per round as
    # search/objective and reported to Tune's scheduler; None logs none.
    objective: str | None = None

    def params(self) -> dict[str, str]:
        """The `run.*` params: how the run ran."""
        shown = (
            "device",
            "amp",
            "channels_last",
            "workers",
            "compile",
            "threads",
            "eval_batch_size",
            "affinity_every",
            "affinity_params",
            "gpus",
        )
        return {f"run.{k}": str(getattr(self, k)) for k in shown}


@dataclass(frozen=True)
class TrialRequest:
    """What the driver hands one trial: its config, how to run it, its run name and tags."""

    config: TrialConfig
    execution: Execution
    name: str  # MLflow run name
    tags: Mapping[str, str] = field(default_factory=dict)  # the contract's tags, prebuilt

    @property
    def key(self) -> str:
        """The trial key."""
        return self.config.key
