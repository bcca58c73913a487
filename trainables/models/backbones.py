"""torchvision classifiers split into a trunk and its feature width."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torchvision
from torch import nn
from torchvision.models._api import WeightsEnum


class ImageNetWeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but are neither cached nor downloadable."""


def imagenet_weights(name: str):
    """torchvision's default ImageNet weights enum for `name`."""
    return torchvision.models.get_model_weights(name).DEFAULT


def fetch_imagenet_weights(name: str) -> None:
    """Make sure the weights are in torch's cache, downloading them if needed.

    Raises ImageNetWeightsUnavailable with the fix when that fails (e.g. offline).
    """
    weights = imagenet_weights(name)
    try:
        weights.get_state_dict(progress=False, check_hash=False, weights_only=True)
    except Exception as exc:
        import torch.hub

        cache = f"{torch.hub.get_dir()}/checkpoints"
        raise ImageNetWeightsUnavailable(
            f"ImageNet weights for {name} are not in {cache} and could not be downloaded "
            f"({type(exc).__name__}: {exc}); copy {weights.url.rsplit('/', 1)[-1]} there, "
            "or set train.imagenet_weights: false"
        ) from None


def build_trunk(
    name: str, pretrained: bool = False, image_size: int = 224
) -> tuple[nn.Module, int]:
    """A torchvision classifier with its last classification layer removed.

    Returns (trunk, feature_dim); the trunk maps (B, 3, H, W) -> (B, feature_dim).
    """
    kwargs: dict[str, object] = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        if not pretrained:
            kwargs["init_weights"] = True
    if name.startswith("vit_") and not pretrained:
        kwargs["image_size"] = image_size  # ViTs are built for one input size
    if name.startswith("maxvit_") and not pretrained:
        kwargs["input_size"] = (image_size, image_size)  # so is MaxViT (multiples of 224)
    if pretrained:
        fetch_imagenet_weights(name)
    weights = imagenet_weights(name) if pretrained else None
    with weights_only_loads():
        model = torchvision.models.get_model(name, weights=weights, **kwargs)
    return model, _strip_classifier(model)


@contextmanager
def weights_only_loads() -> Iterator[None]:
    """Make torchvision's model builders unpickle weights with weights_only=True.

    They call `weights.get_state_dict(...)`, which is torch.hub's load_state_dict_from_url
    with its default weights_only=False: a tampered file in the hub cache would run code.
    """
    original = WeightsEnum.get_state_dict

    def safe(self: WeightsEnum, *args: object, **kwargs: object) -> dict:
        return original(self, *args, **{**kwargs, "weights_only": True})

    WeightsEnum.get_state_dict = safe  # type: ignore[method-assign]
    try:
        yield
    finally:
        WeightsEnum.get_state_dict = original  # type: ignore[method-assign]


def _strip_classifier(model: nn.Module) -> int:
    """Replace the last Linear layer by Identity and return its input width."""
    if isinstance(model, torchvision.models.SqueezeNet):
        # SqueezeNet classifies with a 1x1 conv; keep its 512 pooled features instead.
        model.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return 512
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to remove")
    name, linear = last
    model.set_submodule(name, nn.Identity())
    return linear.in_features
