"""Model builders by name: any torchvision classifier, plus the reference age models."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from trainables.models.backbones import build_trunk
from trainables.models.heads import PassThroughAge, build_head
from trainables.models.multitask import MultiTaskNet
from trainables.models.ssrnet import SSRNet
from trainables.registry import Registry

# Reference models with their own builders; every other name is a torchvision classifier.
REFERENCE: Registry[Callable[..., MultiTaskNet]] = Registry("reference model")


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
    if backbone in REFERENCE:
        if set(tasks) - {"age"}:
            raise ValueError(f"reference model {backbone!r} trains only age, not {tasks}")
        return REFERENCE.get(backbone)(
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


@REFERENCE.register("dex")
def _dex(tasks, age_loss, imagenet_weights, image_size, init_age, age_scale) -> MultiTaskNet:
    """DEX (Rothe et al.): VGG-16 features with a softmax over 0..100 years."""
    trunk, dim = build_trunk("vgg16", imagenet_weights, image_size)
    head = build_head("age", dim, "dex", age_loss, init_age, age_scale)
    return MultiTaskNet(trunk, {"age": head})


@REFERENCE.register("ssrnet")
def _ssrnet(tasks, age_loss, imagenet_weights, image_size, init_age, age_scale) -> MultiTaskNet:
    """SSR-Net: the network itself outputs years; it has no ImageNet weights."""
    if imagenet_weights:
        raise ValueError("ssrnet has no ImageNet weights; set train.imagenet_weights: false")
    return MultiTaskNet(SSRNet(image_size), {"age": PassThroughAge(age_loss, age_scale)})


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
