"""Typed train settings: the part of a trial's config that can change its result.

The spec's `train` section is `TrainSettings` plus execution settings (device, amp, ...),
which never enter a trial's key; the trial config carries `TrainSettings` alone, so code
below the spec reads every setting from one typed object and never supplies a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)


class Strict(BaseModel):
    """Frozen, and unknown keys fail (STYLE.md 1); numbers must be finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OptimizerSpec(Strict):
    """The optimizer, built by torch.optim."""

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: PositiveFloat = 1e-3  # peak learning rate
    weight_decay: NonNegativeFloat = 1e-4
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # sgd only


class ScheduleSpec(Strict):
    """Per-epoch learning-rate schedule."""

    name: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: NonNegativeInt = 0  # linear warmup before the schedule starts
    step_size: PositiveInt = 10  # step only: epochs between decays
    gamma: float = Field(0.1, gt=0.0, le=1.0)  # step only: decay factor


class AugmentSpec(Strict):
    """Augmentation on tensors (so it runs on the GPU when there is one)."""

    hflip: bool = True  # random horizontal flip
    scale: tuple[float, float] = (0.8, 1.0)  # random crop area, as a fraction of the image
    ratio: tuple[float, float] = (0.9, 1.1)  # random crop aspect ratio


class DWASpec(Strict):
    """Dynamic weight average (Liu et al. 2019)."""

    temperature: PositiveFloat = 2.0  # softens the weights; larger = closer to uniform


class GradNormSpec(Strict):
    """GradNorm (Chen et al. 2018)."""

    alpha: NonNegativeFloat = 1.5  # restoring force towards equal training rates
    lr: PositiveFloat = 0.025  # learning rate of the task weights


class TrainSettings(Strict):
    """How one trial trains: every setting that can change its result (the key's `train`)."""

    epochs: PositiveInt = 10  # passes over the data (see data.epoch_rule)
    batch_size: PositiveInt = 64  # images per step, split evenly across the trial's sources
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
