"""The sweep spec: a typed schema whose defaults explain themselves. Unknown keys fail.

Structure is checked here by pydantic; meaning (task names, backbones, stage
references, weights) is checked by `mtl_sweep.spec.validate`, which can name the exact
key path. Imports neither torch nor ray.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
)

from mtl_core.settings import Count, Seed, Strict, TrainSettings
from mtl_core.sources import Source, SyntheticSource
from mtl_sweep.spec.search import SearchSpec
from mtl_sweep.spec.weights import WeightItem


def _as_list(value: Any) -> Any:
    """Let an axis be written as a scalar: `backbone: resnet18` means `[resnet18]`."""
    if value is None or isinstance(value, list | tuple):
        return value
    return [value]


def _as_weight_list(value: Any) -> Any:
    """A single weight vector (a list of numbers, or a mapping) means a list of one."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list | tuple) and value and isinstance(value[0], int | float):
        return [value]
    return value


def _as_task_list(value: Any) -> Any:
    """`tasks: all` means `[all]`; a flat list stays a list of items."""
    return [value] if isinstance(value, str) else value


# Sweep and experiment names: they become folder names (artifacts), so no `/` and no `..`.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _synthetic() -> SyntheticSource:
    return SyntheticSource()


class DataSpec(Strict):
    """Where each task's labels come from, and how epochs over several sources are sized."""

    age: Source = Field(default_factory=_synthetic)  # default real source: chalearn
    gender: Source = Field(default_factory=_synthetic)  # default real source: celeba
    emotion: Source = Field(default_factory=_synthetic)  # default real source: fer2013
    smile: Source = Field(default_factory=_synthetic)  # default real source: celeba
    # Decoded-image caches and generated synthetic data. None: $MTL_SWEEP_CACHE, else
    # ~/.cache/mtl-sweep. Must be shared by, or exist on, every node of a cluster.
    cache_dir: str | None = None
    # One epoch is one pass over the longest source (shorter ones cycle), or over the
    # sum of all sources. Never truncated to the shortest.
    epoch_rule: Literal["longest", "sum"] = "longest"


class AffinitySpec(Strict):
    """TAG's lookahead inter-task affinity (Fifty et al. 2021), logged per pair of tasks.

    Measured on copies, so training is bit-identical with it on (an execution setting)."""

    every: Count | None = None  # measure every N-th step of each round; None = off
    # What the lookahead steps: the whole trunk (TAG as published), or only the trunk's
    # last weight tensor (the layer GradNorm measures; a cheaper proxy, docs/groupings.md).
    params: Literal["trunk", "last_shared"] = "trunk"


class TrainSpec(TrainSettings):
    """How one trial trains (`TrainSettings`), plus execution settings that never enter a
    trial's key. Include rules and stages may override the former."""

    eval_batch_size: Count = 256  # images per evaluation batch
    # auto = cuda if available, else mps, else cpu
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    # threads gathering the next batches (into pinned memory on CUDA) while the model
    # trains; 0 = gather in the training thread
    workers: NonNegativeInt = 0
    compile: bool = False  # torch.compile the model (measured: docs/benchmarks.md, GPU)
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # channels_last memory format on CUDA (ignored on CPU)
    affinity: AffinitySpec = Field(default_factory=AffinitySpec)  # multi-task trials only


# Derived, so a new execution setting cannot leak into keys by being forgotten here.
EXECUTION_ONLY_TRAIN_KEYS: frozenset[str] = frozenset(TrainSpec.model_fields) - frozenset(
    TrainSettings.model_fields
)


class StageSpec(Strict):
    """A pretraining stage: trains the trunk plus some heads, then hands the trunk on."""

    source: Source  # imdb_wiki, or synthetic (its IMDB-WIKI-format twin)
    tasks: list[str] = Field(default_factory=lambda: ["age", "gender"])
    epochs: Count = 5
    seed: Seed = 0  # the job's own seed: every downstream seed shares one job
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the trial's train


# --- The grid -------------------------------------------------------------------------------

TaskItem = str | list[str]  # a shorthand, a task name, or an explicit task set


class CellSpec(Strict):
    """An `include` rule: a small grid added to the main one. Omitted axes take the grid's."""

    tasks: Annotated[list[TaskItem] | None, BeforeValidator(_as_task_list)] = None
    backbone: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    pretrain: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weighting: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weights: Annotated[list[WeightItem] | None, BeforeValidator(_as_weight_list)] = None
    seed: Annotated[list[Seed] | None, BeforeValidator(_as_list)] = None
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the sweep's train
    # Names a reference model (e.g. "DEX"): its trials are counted separately and shown
    # in the report's reference block. None: the cells join the main grid.
    label: Annotated[str, Field(min_length=1)] | None = None  # "": counted as one, not tagged


class MatchSpec(Strict):
    """An `exclude` rule: a main-grid cell is dropped when it matches every key given."""

    tasks: Annotated[list[TaskItem] | None, BeforeValidator(_as_task_list)] = None
    backbone: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    pretrain: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weighting: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    seed: Annotated[list[Seed] | None, BeforeValidator(_as_list)] = None


class GridSpec(Strict):
    """The axes whose product is the main grid, plus include and exclude rules."""

    # Task sets. Items: a shorthand (singles, all, pairs, leave_one_out, powerset), a task
    # name (that task alone) or an explicit list such as [age, gender]. Duplicates collapse.
    tasks: Annotated[list[TaskItem], BeforeValidator(_as_task_list)] = Field(
        default_factory=lambda: ["singles", "all"]
    )
    backbone: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: ["resnet18"]
    )  # torchvision classification models, or a reference model (dex, ssrnet)
    pretrain: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: ["none"]
    )  # none, or a stage name
    weighting: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: ["fixed"]
    )  # fixed, uncertainty, dwa, gradnorm
    # Fixed loss weights in task order (age, gender, emotion, smile), or {task: weight}
    # with omitted tasks at 1, or a lattice per task set: {ratios: [...]} for pairs,
    # {simplex: N} (spec/weights.py). Only `fixed` uses them; a zero drops that task.
    weights: Annotated[list[WeightItem], BeforeValidator(_as_weight_list)] = Field(
        default_factory=lambda: [[1.0, 1.0, 1.0, 1.0]]
    )
    seed: Annotated[list[Seed], BeforeValidator(_as_list)] = Field(default_factory=lambda: [0])
    include: list[CellSpec] = Field(default_factory=list)  # cells added after exclusion
    exclude: list[MatchSpec] = Field(default_factory=list)  # main-grid cells to drop


# --- Execution ------------------------------------------------------------------------------


class TrackingSpec(Strict):
    """Where runs go. The CLI's --tracking-uri wins over `uri`, which wins over the env."""

    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the cwd
    # None: the sweep's name. It becomes a folder under the artifact root, so no slashes.
    experiment: str | None = Field(None, pattern=NAME_PATTERN, max_length=200)


class ResourcesSpec(Strict):
    """What each trial asks Ray for."""

    cpu: PositiveFloat = 1.0  # CPUs per trial; also the trial's torch thread count
    gpu: NonNegativeFloat = 0.0  # GPUs per trial; fractions share a card
    max_concurrent: PositiveInt | None = None  # None: as many as the resources allow


class FailureSpec(Strict):
    """What happens when a trial raises."""

    retries: NonNegativeInt = 1  # Tune restarts from the last checkpoint this many times


class DebugSpec(Strict):
    """Failure injection, for tests only. Never enters a trial's key."""

    fail_tasks: list[list[str]] = Field(default_factory=list)  # trials with these task sets raise
    # ... at the start of this round (an epoch, or an eval_every stretch under a matched
    # budget), once: a retry that resumes from a checkpoint goes on.
    fail_epoch: NonNegativeInt = 0


class Spec(Strict):
    """A whole sweep: one YAML file."""

    name: str = Field(pattern=NAME_PATTERN, max_length=200)  # also the default experiment
    description: str = ""
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    stages: dict[str, StageSpec] = Field(default_factory=dict)
    grid: GridSpec = Field(default_factory=GridSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    debug: DebugSpec = Field(default_factory=DebugSpec)
    # None: every cell trains at its train settings; else each cell is tuned (docs/tuning.md)
    search: SearchSpec | None = None
    # Key path -> the string with secret ${VAR}s left unexpanded (set by mtl_sweep.spec.load).
    _redactions: dict[tuple[object, ...], str] = PrivateAttr(default_factory=dict)

    @property
    def experiment(self) -> str:
        """The MLflow experiment this sweep logs to."""
        return self.tracking.experiment or self.name
