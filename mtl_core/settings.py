"""Typed train settings: the part of a trial's config that can change its result.

The spec's `train` section is `TrainSettings` plus execution settings (device, amp, ...),
which never enter a trial's key; the trial config carries `TrainSettings` alone, so code
below the spec reads every setting from one typed object and never supplies a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Bounds for spec integers: sizes and counts stay where budget arithmetic is finite (a
# 400-digit epoch count overflowed a float), seeds where torch and numpy accept them
# (torch.manual_seed refuses seeds past 2**63; a trial derives seeds as seed * 100003).
MAX_COUNT = 10**9
MAX_SEED = 2**31 - 1
# Strict: YAML's `true` is not a count or a seed of 1.
Count = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, strict=True)]


class Strict(BaseModel):
    """Frozen, and unknown keys fail (STYLE.md 1); numbers must be finite, and true/false
    is only a value of yes/no settings (pydantic alone would read YAML's `true` as 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_values(cls, data: Any) -> Any:
        # Model-level: a field validator may not run before a union's discriminator field.
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if field is None or _admits_bool(field.annotation):
                    continue
                at = _bool_at(value)
                if at is not None:
                    raise BooleanValue((name, *at))
        return data


class BooleanValue(ValueError):
    """true/false where a setting takes a number or a name; `at` is the path below the
    model that refused it, for the spec's error message."""

    def __init__(self, at: tuple[str | int, ...]) -> None:
        super().__init__(
            "true/false is not a value of this setting (YAML reads true, false, yes, no, on "
            "and off as true/false)"
        )
        self.at = at


def error_path(error: Mapping[str, Any]) -> tuple[int | str, ...]:
    """A pydantic error's location (from `ValidationError.errors()`); a refused true/false
    is located at its key below the model that refused it."""
    below = (error.get("ctx") or {}).get("error")
    return tuple(error["loc"]) + (below.at if isinstance(below, BooleanValue) else ())


@cache
def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type holds true/false itself, or leaves the check to where its
    value is validated (a nested model, or Any)."""
    if annotation is bool or annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    return any(_admits_bool(a) for a in get_args(annotation))


def _bool_at(value: Any) -> tuple[str | int, ...] | None:
    """The path to the first true/false in `value` (() for itself), or None."""
    if isinstance(value, bool):
        return ()
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        at = _bool_at(item)
        if at is not None:
            return (key, *at)
    return None


class OptimizerSpec(Strict):
    """The optimizer, built by torch.optim."""

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: PositiveFloat = 1e-3  # peak learning rate
    weight_decay: NonNegativeFloat = 1e-4
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # sgd only


class ScheduleSpec(Strict):
    """Learning-rate schedule, advanced every optimizer step (per epoch under `per_epoch`).

    Lengths are in epochs of the budget: under `matched` an epoch is S / train.epochs steps
    in every trial, so warmup ends at the same step whatever a trial's sources.
    """

    name: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: NonNegativeInt = 0  # linear warmup before the schedule starts
    step_size: PositiveInt = 10  # step only: epochs between decays
    gamma: float = Field(0.1, gt=0.0, le=1.0)  # step only: decay factor


class AugmentSpec(Strict):
    """Augmentation on tensors (so it runs on the GPU when there is one)."""

    hflip: bool = True  # random horizontal flip
    scale: tuple[PositiveFloat, PositiveFloat] = (0.8, 1.0)  # crop area, fraction of the image
    ratio: tuple[PositiveFloat, PositiveFloat] = (0.9, 1.1)  # random crop aspect ratio

    @field_validator("scale", "ratio")
    @classmethod
    def _a_range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        # A crop of log(0) aspect or of more than the whole image is NaN in every trial.
        lo, hi = value
        if lo > hi:
            raise ValueError(f"[low, high] with low <= high, not {list(value)}")
        if info.field_name == "scale" and hi > 1:
            raise ValueError(f"a crop's area is at most the whole image (1.0), not {hi}")
        return value


class DWASpec(Strict):
    """Dynamic weight average (Liu et al. 2019)."""

    temperature: PositiveFloat = 2.0  # softens the weights; larger = closer to uniform


class GradNormSpec(Strict):
    """GradNorm (Chen et al. 2018)."""

    alpha: NonNegativeFloat = 1.5  # restoring force towards equal training rates
    lr: PositiveFloat = 0.025  # learning rate of the task weights


class BudgetSpec(Strict):
    """How much training each trial gets (docs/budgets.md).

    `matched` (the default): every trial runs the same number of optimizer steps S, and each
    step draws `train.batch_size` images from every source the trial reads, so a task sees
    S x batch_size of its own images whether it trains alone or with others. S is `steps`,
    else `train.epochs` passes over the reference task's train split. `per_epoch` is the
    rule before budgets existed: the batch is split across the trial's sources and an epoch
    is a pass over the longest source (`data.epoch_rule`); arms then differ in steps.
    """

    rule: Literal["matched", "per_epoch"] = "matched"
    steps: Count | None = None  # matched: S itself; None = train.epochs over `reference`
    # matched: the task whose train split sizes an epoch, shared by the whole sweep. None: the
    # first task (in the order age, gender, emotion, smile) that the sweep trains.
    reference: Literal["age", "gender", "emotion", "smile"] | None = None


class TrainSettings(Strict):
    """How one trial trains: every setting that can change its result (the key's `train`)."""

    epochs: Count = 10  # passes over the reference split (matched) or the data (per_epoch)
    # matched: images per step from EACH source; per_epoch: per step, split across sources
    batch_size: Count = 64
    image_size: int = Field(64, ge=16, le=512)  # square input side, pixels
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    # matched: optimizer steps between validations (and best-on-val checks); None = S // 10.
    # per_epoch validates after every epoch.
    eval_every: Count | None = None
    steps_per_epoch: Count | None = None  # per_epoch only: cap on steps per epoch
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    age_head: Literal["regression", "dex"] = "regression"  # dex: softmax over 0..100 years
    age_loss: Literal["l1", "smooth_l1"] = "l1"  # regression head only
    imagenet_weights: bool = False  # torchvision's ImageNet weights; needs network or cache
    dwa: DWASpec = Field(default_factory=DWASpec)
    gradnorm: GradNormSpec = Field(default_factory=GradNormSpec)
