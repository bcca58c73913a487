"""One optimizer step's setting and parts, shared by the loop and the affinity probe:
where steps run (`StepContext`), images onto the device, and the per-task masked losses."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor

from mtl_core.settings import AugmentSpec
from trainables.augmentation import augment
from trainables.batches import Batch
from trainables.models.multitask import MultiTaskNet


@dataclass
class StepContext:
    """Where and how steps run."""

    device: torch.device
    amp: bool = False  # bf16 autocast; only on CUDA
    channels_last: bool = False  # only on CUDA
    augment: AugmentSpec | None = None  # train.augment; None = no augmentation
    generator: torch.Generator | None = None  # seeds augmentation, on `device`
    workers: int = 0  # threads gathering batches ahead (train.workers); 0 = in this thread
    pin: bool = False  # gathered batches go to pinned memory (CUDA with workers only)

    def autocast(self):
        """bf16 autocast on CUDA when enabled, else a no-op context."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()


def prepare_images(images: Tensor, ctx: StepContext, train: bool) -> Tensor:
    """uint8 (B, 3, H, W) on the CPU -> float in [0, 1] on the device, augmented when training."""
    x = images.to(ctx.device, non_blocking=True).float().div_(255.0)
    if train and ctx.augment is not None:
        x = augment(
            x,
            ctx.generator,
            hflip=ctx.augment.hflip,
            scale=ctx.augment.scale,
            ratio=ctx.augment.ratio,
        )
    if ctx.channels_last and ctx.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def masked_losses(
    model: MultiTaskNet, outputs: Mapping[str, Tensor], batch: Batch, device: torch.device
) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Per-task mean loss over the samples that carry that task's label.

    A task with no labelled sample in the batch is absent from the result, so it
    contributes nothing. Returns (losses, labelled-sample counts).
    """
    losses, counts = {}, {}
    for task, head in model.heads.items():
        mask = batch.mask[task]
        n = int(mask.sum())  # on the CPU: no device sync
        if n == 0:
            continue
        m = mask.to(device, non_blocking=True)
        target = batch.labels[task].to(device, non_blocking=True)[m]
        losses[task] = head.loss(outputs[task][m], target)
        counts[task] = n
    return losses, counts
