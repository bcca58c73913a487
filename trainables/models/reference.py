"""The reference age models' builders, named in `mtl_core.backbones.REFERENCE_MODELS`."""

from __future__ import annotations

from trainables.models.backbones import build_trunk
from trainables.models.heads import PassThroughAge, build_head
from trainables.models.multitask import MultiTaskNet
from trainables.models.ssrnet import SSRNet


def build_dex(tasks, age_loss, imagenet_weights, image_size, init_age, age_scale) -> MultiTaskNet:
    """DEX (Rothe et al.): VGG-16 features with a softmax over 0..100 years."""
    trunk, dim = build_trunk("vgg16", imagenet_weights, image_size)
    head = build_head("age", dim, "dex", age_loss, init_age, age_scale)
    return MultiTaskNet(trunk, {"age": head})


def build_ssrnet(
    tasks, age_loss, imagenet_weights, image_size, init_age, age_scale
) -> MultiTaskNet:
    """SSR-Net: the network itself outputs years; it has no ImageNet weights."""
    if imagenet_weights:
        raise ValueError("ssrnet has no ImageNet weights; set train.imagenet_weights: false")
    return MultiTaskNet(SSRNet(image_size), {"age": PassThroughAge(age_loss, age_scale)})
