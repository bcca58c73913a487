"""Model builders by name: any torchvision classifier, plus the reference age models
(`mtl_core.backbones.REFERENCE_MODELS`, built in `trainables.models.reference`)."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from mtl_core.backbones import REFERENCE_MODELS
from trainables.models.backbones import build_trunk
from trainables.models.heads import build_head
from trainables.models.multitask import MultiTaskNet


def build_model(
    backbone: str,
    tasks: Iterable[str],
    age_head: str = "regression",
    age_loss: str = "l1",
    imagenet_weights: bool = False,
    image_size: int = 64,
    init_age: float = 35.0,
    age_scale: float = 20.0,
) -> MultiTaskNet:
    """The multi-task network for `tasks` on `backbone`; forward returns dict[task, Tensor]."""
    tasks = tuple(tasks)
    if backbone in REFERENCE_MODELS:
        ref = REFERENCE_MODELS.get(backbone)
        if set(tasks) - set(ref.meta.tasks):
            raise ValueError(f"reference model {backbone!r} trains only age, not {tasks}")
        return ref.load()(
            tasks=tasks,
            age_loss=age_loss,
            imagenet_weights=imagenet_weights,
            image_size=image_size,
            init_age=init_age,
            age_scale=age_scale,
        )
    trunk, dim = build_trunk(backbone, imagenet_weights, image_size)
    heads = {t: build_head(t, dim, age_head, age_loss, init_age, age_scale) for t in tasks}
    return MultiTaskNet(trunk, heads)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
