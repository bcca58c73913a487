"""Which model names a spec may use, known without importing torch.

`TORCHVISION_CLASSIFIERS` mirrors `torchvision.models.list_models(module=torchvision.models)`
for the pinned torchvision; a test keeps the two equal. A name outside it is looked up
in the installed torchvision before it is refused, so a newer torchvision still works.
`REFERENCE_MODELS` are the published age models the study compares against; the
trainables register their architectures under the same names (a test checks that too).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

TORCHVISION_CLASSIFIERS: tuple[str, ...] = (
    "alexnet",
    "convnext_base",
    "convnext_large",
    "convnext_small",
    "convnext_tiny",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_l",
    "efficientnet_v2_m",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "maxvit_t",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_x_16gf",
    "regnet_x_1_6gf",
    "regnet_x_32gf",
    "regnet_x_3_2gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_8gf",
    "regnet_y_128gf",
    "regnet_y_16gf",
    "regnet_y_1_6gf",
    "regnet_y_32gf",
    "regnet_y_3_2gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_8gf",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext50_32x4d",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "swin_b",
    "swin_s",
    "swin_t",
    "swin_v2_b",
    "swin_v2_s",
    "swin_v2_t",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vit_b_16",
    "vit_b_32",
    "vit_h_14",
    "vit_l_16",
    "vit_l_32",
    "wide_resnet101_2",
    "wide_resnet50_2",
)


@dataclass(frozen=True)
class ReferenceModel:
    """A registered reference model: the tasks it can train and the age head it forces."""

    tasks: tuple[str, ...]
    age_head: str
    display: str  # how the report names it
    imagenet_weights: bool  # whether torchvision has ImageNet weights for its trunk
    min_image_size: int = 16  # pixels; smaller inputs leave no feature map to read


REFERENCE_MODELS: dict[str, ReferenceModel] = {
    # DEX (Rothe et al.): VGG-16 with a softmax over ages 0..100, predicting the expectation.
    # "-style": our crops are not the paper's 40% margin around detected faces (README).
    "dex": ReferenceModel(
        tasks=("age",), age_head="dex", display="DEX-style (VGG-16)", imagenet_weights=True
    ),
    # SSR-Net (Yang et al., IJCAI 2018): compact soft stagewise regression, 64x64 input.
    # Unpadded convs: below 38 px the fourth block has no output (trainables ssrnet.py).
    "ssrnet": ReferenceModel(
        tasks=("age",),
        age_head="regression",
        display="SSR-Net",
        imagenet_weights=False,
        min_image_size=38,
    ),
}


def known_backbones() -> tuple[str, ...]:
    """Every model name a spec may use, sorted."""
    return tuple(sorted((*TORCHVISION_CLASSIFIERS, *REFERENCE_MODELS)))


def _installed_torchvision_has(name: str) -> bool:
    # Only reached for names outside the static list, so the common path stays torch-free.
    try:
        import torchvision
    except ImportError:
        return False
    return name in torchvision.models.list_models(module=torchvision.models)


def check_backbone(name: str) -> str | None:
    """Return None when `name` is a usable model, else an error message that lists the fix."""
    if name in TORCHVISION_CLASSIFIERS or name in REFERENCE_MODELS:
        return None
    if _installed_torchvision_has(name):
        return None
    close = difflib.get_close_matches(name, known_backbones(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"unknown backbone {name!r}{hint}; known: {', '.join(known_backbones()[:12])}, ... "
        "(any torchvision classification model, or a reference model: "
        f"{', '.join(REFERENCE_MODELS)})"
    )


def display_name(backbone: str) -> str:
    """Human name for tables and run names, e.g. resnet18 -> ResNet-18."""
    if backbone in REFERENCE_MODELS:
        return REFERENCE_MODELS[backbone].display
    for prefix, pretty in _PRETTY_PREFIXES:
        if backbone.startswith(prefix):
            parts = [_pretty_part(p) for p in backbone[len(prefix) :].split("_") if p]
            return "-".join((pretty, *parts))
    return backbone


_PRETTY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("wide_resnet", "WideResNet"),
    ("resnext", "ResNeXt"),
    ("resnet", "ResNet"),
    ("vgg", "VGG"),
    ("alexnet", "AlexNet"),
    ("densenet", "DenseNet"),
    ("mobilenet_", "MobileNet"),
    ("efficientnet_", "EfficientNet"),
    ("convnext_", "ConvNeXt"),
)


def _pretty_part(part: str) -> str:
    return part.upper() if len(part) <= 2 else part.capitalize()
