"""The sweep spec: a typed schema whose defaults explain themselves. Unknown keys fail.

Structure is checked here by pydantic; meaning (task names, backbones, stage
references, weights) is checked by `mtl_sweep.validate`, which can name the exact
key path. Imports neither torch nor ray.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from mtl_sweep.tasks import TASKS


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Data sources ---------------------------------------------------------------------------


class SyntheticSource(_Strict):
    """Procedurally rendered faces, written on first use in the real datasets' formats."""

    kind: Literal["synthetic"] = "synthetic"
    train: PositiveInt = 512  # images in each dataset's train split
    val: PositiveInt = 128  # images in each val split (model selection)
    test: PositiveInt = 128  # images in each test split (reported numbers)
    pretrain: PositiveInt = 1024  # images in the IMDB-WIKI-format set, before cleaning
    seed: int = 0  # same seed and sizes, same bytes on disk
    nuisance: NonNegativeFloat = 1.0  # scale of pose, lighting, noise and clutter; 0 = clean


class ChalearnSource(_Strict):
    """ChaLearn LAP 2016 apparent age: {train,valid,test}_gt.csv plus image folders."""

    kind: Literal["chalearn"]
    root: str  # folder holding train_gt.csv, valid_gt.csv, test_gt.csv, train/, valid/, test/


class ImdbWikiSource(_Strict):
    """IMDB-WIKI: imdb.mat or wiki.mat plus the face crops. No official split."""

    kind: Literal["imdb_wiki"]
    root: str  # folder holding imdb_crop/ or wiki_crop/
    db: Literal["imdb", "wiki"] = "imdb"  # which half of IMDB-WIKI
    val_fraction: float = Field(0.05, gt=0.0, lt=1.0)  # held out for model selection
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)  # held out for the reported numbers
    split_seed: int = 0  # the held-out split is deterministic from this seed
    min_face_score: float = 1.0  # usual cleaning threshold on face_score
    max_images: PositiveInt | None = None  # cap after cleaning (quick studies); None = all


class Fer2013Source(_Strict):
    """FER2013: fer2013.csv with emotion,pixels,Usage."""

    kind: Literal["fer2013"]
    root: str  # folder holding fer2013.csv


class CelebASource(_Strict):
    """CelebA: list_attr_celeba.txt, list_eval_partition.txt and the aligned images."""

    kind: Literal["celeba"]
    root: str  # folder holding the two list files
    images: str = "img_align_celeba"  # image folder, relative to root


class CsvSource(_Strict):
    """Any gender/smile data as a plain CSV: image,gender,smile,split."""

    kind: Literal["csv"]
    root: str  # folder holding the CSV; image paths in it are relative to this folder
    file: str = "labels.csv"  # the CSV's name inside root


class GenkiSource(_Strict):
    """GENKI-4K: labels.txt plus files/fileNNNN.jpg. No official split."""

    kind: Literal["genki"]
    root: str  # folder holding labels.txt and files/
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    split_seed: int = 0  # the split is deterministic from this seed


def _default_kind(value: Any) -> Any:
    """A source mapping without `kind` is synthetic (the default source)."""
    if isinstance(value, dict) and "kind" not in value:
        return {**value, "kind": "synthetic"}
    return value


Source = Annotated[
    SyntheticSource
    | ChalearnSource
    | ImdbWikiSource
    | Fer2013Source
    | CelebASource
    | CsvSource
    | GenkiSource,
    Field(discriminator="kind"),
    BeforeValidator(_default_kind),
]

# Which tasks each source kind carries labels for.
SOURCE_TASKS: dict[str, tuple[str, ...]] = {
    "synthetic": TASKS,
    "chalearn": ("age",),
    "imdb_wiki": ("age", "gender"),
    "fer2013": ("emotion",),
    "celeba": ("gender", "smile"),
    "csv": ("gender", "smile"),
    "genki": ("smile",),
}
# The real format a synthetic source writes for each task (and "pretrain" for stages).
SYNTHETIC_FORMAT: dict[str, str] = {
    "age": "chalearn",
    "gender": "celeba",
    "emotion": "fer2013",
    "smile": "celeba",
    "pretrain": "imdb_wiki",
}
# Dataset names shown in report headings.
DATASET_NAMES: dict[str, str] = {
    "synthetic": "synthetic",
    "chalearn": "ChaLearn 2016",
    "imdb_wiki": "IMDB-WIKI",
    "fer2013": "FER2013",
    "celeba": "CelebA",
    "csv": "CSV",
    "genki": "GENKI-4K",
}


def _synthetic() -> SyntheticSource:
    return SyntheticSource()


class DataSpec(_Strict):
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


# --- Training -------------------------------------------------------------------------------


class OptimizerSpec(_Strict):
    """The optimizer, built by torch.optim."""

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: PositiveFloat = 1e-3  # peak learning rate
    weight_decay: NonNegativeFloat = 1e-4
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # sgd only


class ScheduleSpec(_Strict):
    """Per-epoch learning-rate schedule."""

    name: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: NonNegativeInt = 0  # linear warmup before the schedule starts
    step_size: PositiveInt = 10  # step only: epochs between decays
    gamma: float = Field(0.1, gt=0.0, le=1.0)  # step only: decay factor


class AugmentSpec(_Strict):
    """Augmentation on tensors (so it runs on the GPU when there is one)."""

    hflip: bool = True  # random horizontal flip
    scale: tuple[float, float] = (0.8, 1.0)  # random crop area, as a fraction of the image
    ratio: tuple[float, float] = (0.9, 1.1)  # random crop aspect ratio


class DWASpec(_Strict):
    """Dynamic weight average (Liu et al. 2019)."""

    temperature: PositiveFloat = 2.0  # softens the weights; larger = closer to uniform


class GradNormSpec(_Strict):
    """GradNorm (Chen et al. 2018)."""

    alpha: NonNegativeFloat = 1.5  # restoring force towards equal training rates
    lr: PositiveFloat = 0.025  # learning rate of the task weights


class TrainSpec(_Strict):
    """How one trial trains. Include rules and stages may override any of it."""

    epochs: PositiveInt = 10  # passes over the data (see data.epoch_rule)
    batch_size: PositiveInt = 64  # images per step, split evenly across the trial's sources
    eval_batch_size: PositiveInt = 256  # images per evaluation batch
    image_size: int = Field(64, ge=16, le=512)  # square input side, pixels
    steps_per_epoch: PositiveInt | None = None  # cap on steps per epoch; None = the epoch rule
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    age_head: Literal["regression", "dex"] = "regression"  # dex: softmax over 0..100 years
    age_loss: Literal["l1", "smooth_l1"] = "l1"  # regression head only
    imagenet_weights: bool = False  # torchvision's ImageNet weights; needs network or cache
    dwa: DWASpec = Field(default_factory=DWASpec)
    gradnorm: GradNormSpec = Field(default_factory=GradNormSpec)
    # Execution only: these never enter a trial's key.
    # auto = cuda if available, else mps, else cpu
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    # threads gathering the next batches (into pinned memory on CUDA) while the model
    # trains; 0 = gather in the training thread
    workers: NonNegativeInt = 0
    compile: bool = False  # torch.compile the model (measured: see README, GPU)
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # channels_last memory format on CUDA (ignored on CPU)


EXECUTION_ONLY_TRAIN_KEYS: frozenset[str] = frozenset(
    {"device", "workers", "compile", "amp", "channels_last", "eval_batch_size"}
)


class StageSpec(_Strict):
    """A pretraining stage: trains the trunk plus some heads, then hands the trunk on."""

    source: Source  # imdb_wiki, or synthetic (its IMDB-WIKI-format twin)
    tasks: list[str] = Field(default_factory=lambda: ["age", "gender"])
    epochs: PositiveInt = 5
    seed: int = 0  # the job's own seed: every downstream seed shares one job
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the trial's train


# --- The grid -------------------------------------------------------------------------------

TaskItem = str | list[str]  # a shorthand, a task name, or an explicit task set
WeightVector = list[float] | dict[str, float]


class CellSpec(_Strict):
    """An `include` rule: a small grid added to the main one. Omitted axes take the grid's."""

    tasks: Annotated[list[TaskItem] | None, BeforeValidator(_as_task_list)] = None
    backbone: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    pretrain: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weighting: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weights: Annotated[list[WeightVector] | None, BeforeValidator(_as_weight_list)] = None
    seed: Annotated[list[int] | None, BeforeValidator(_as_list)] = None
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the sweep's train
    # Names a reference model (e.g. "DEX"): its trials are counted separately and shown
    # in the report's reference block. None: the cells join the main grid.
    label: str | None = None


class MatchSpec(_Strict):
    """An `exclude` rule: a main-grid cell is dropped when it matches every key given."""

    tasks: Annotated[list[TaskItem] | None, BeforeValidator(_as_task_list)] = None
    backbone: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    pretrain: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    weighting: Annotated[list[str] | None, BeforeValidator(_as_list)] = None
    seed: Annotated[list[int] | None, BeforeValidator(_as_list)] = None


class GridSpec(_Strict):
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
    # with omitted tasks at 1. Only `fixed` uses them; a zero drops that task.
    weights: Annotated[list[WeightVector], BeforeValidator(_as_weight_list)] = Field(
        default_factory=lambda: [[1.0, 1.0, 1.0, 1.0]]
    )
    seed: Annotated[list[int], BeforeValidator(_as_list)] = Field(default_factory=lambda: [0])
    include: list[CellSpec] = Field(default_factory=list)  # cells added after exclusion
    exclude: list[MatchSpec] = Field(default_factory=list)  # main-grid cells to drop


# --- Execution ------------------------------------------------------------------------------


class TrackingSpec(_Strict):
    """Where runs go. The CLI's --tracking-uri wins over `uri`, which wins over the env."""

    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the cwd
    experiment: str | None = None  # None: the sweep's name


class ResourcesSpec(_Strict):
    """What each trial asks Ray for."""

    cpu: PositiveFloat = 1.0  # CPUs per trial; also the trial's torch thread count
    gpu: NonNegativeFloat = 0.0  # GPUs per trial; fractions share a card
    max_concurrent: PositiveInt | None = None  # None: as many as the resources allow


class FailureSpec(_Strict):
    """What happens when a trial raises."""

    retries: NonNegativeInt = 1  # Tune restarts from the last checkpoint this many times


class DebugSpec(_Strict):
    """Failure injection, for tests only. Never enters a trial's key."""

    fail_tasks: list[list[str]] = Field(default_factory=list)  # trials with these task sets raise
    # ... at the start of this epoch, once: a retry that resumes from a checkpoint goes on.
    fail_epoch: NonNegativeInt = 0


class Spec(_Strict):
    """A whole sweep: one YAML file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # also the default experiment
    description: str = ""
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    stages: dict[str, StageSpec] = Field(default_factory=dict)
    grid: GridSpec = Field(default_factory=GridSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    debug: DebugSpec = Field(default_factory=DebugSpec)

    @property
    def experiment(self) -> str:
        """The MLflow experiment this sweep logs to."""
        return self.tracking.experiment or self.name
