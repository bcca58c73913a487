"""Which model names a spec may use, known without importing torch.

- torchvision's classification models are read from the installed torchvision's source
  (the functions its `models/*.py` decorate with `@register_model`), so the list is
  torchvision's own by construction and costs no torch import (~0.15 s, once).
- `REFERENCE_MODELS` is the registry of the published age models the study compares
  against; each entry names its builder in `trainables.models.reference` lazily.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mtl_core.registry import Registry


@cache
def torchvision_classifiers() -> tuple[str, ...]:
    """The classification models of the installed torchvision, sorted, without importing it.

    Equal to `torchvision.models.list_models(module=torchvision.models)` (a test checks).
    """
    found = importlib.util.find_spec("torchvision")
    if found is None or not found.submodule_search_locations:
        return ()
    names: set[str] = set()
    # Classification builders live in models/*.py; detection, video, ... in subpackages.
    for path in (Path(found.submodule_search_locations[0]) / "models").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and any(
                _is_register_model(d) for d in node.decorator_list
            ):
                names.add(node.name)
    return tuple(sorted(names))


def _is_register_model(decorator: ast.expr) -> bool:
    func = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name == "register_model"


@dataclass(frozen=True)
class ReferenceModel:
    """A registered reference model: the tasks it can train and the age head it forces."""

    tasks: tuple[str, ...]
    age_head: str
    display: str  # how the report names it
    imagenet_weights: bool  # whether torchvision has ImageNet weights for its trunk
    min_image_size: int = 16  # pixels; smaller inputs leave no feature map to read


REFERENCE_MODELS: Registry[ReferenceModel] = Registry("reference model")
# DEX (Rothe et al.): VGG-16 with a softmax over ages 0..100, predicting the expectation.
# "-style": our crops are not the paper's 40% margin around detected faces (docs/spec.md).
REFERENCE_MODELS.add(
    "dex",
    "trainables.models.reference:build_dex",
    ReferenceModel(
        tasks=("age",), age_head="dex", display="DEX-style (VGG-16)", imagenet_weights=True
    ),
)
# SSR-Net (Yang et al., IJCAI 2018): compact soft stagewise regression, 64x64 input.
REFERENCE_MODELS.add(
    "ssrnet",
    "trainables.models.reference:build_ssrnet",
    # Unpadded convs: below 38 px the fourth block has no output (trainables ssrnet.py).
    ReferenceModel(
        tasks=("age",),
        age_head="regression",
        display="SSR-Net",
        imagenet_weights=False,
        min_image_size=38,
    ),
)


@dataclass(frozen=True)
class InputSizes:
    """The square inputs a model reads: at least `least` pixels, and a multiple of `step`."""

    least: int = 8
    step: int = 1


# torchvision classifiers whose inputs are limited beyond the spec's 16 px floor, by name
# prefix (first match wins). Below `least` a pooling layer is left with no output; a
# ViT's patches (or MaxViT's 7x7 windows at 1/32 scale) must tile the image. Measured on
# the meta device with torchvision 0.29; tests/test_models.py checks every classifier of
# the installed torchvision against this table, so a change there fails a test, not a trial.
_LIMITED_INPUTS: tuple[tuple[str, InputSizes], ...] = (
    ("alexnet", InputSizes(63)),
    ("convnext_", InputSizes(32)),
    ("densenet", InputSizes(29)),
    ("inception_v3", InputSizes(75)),
    ("maxvit_", InputSizes(224, 224)),
    ("squeezenet1_0", InputSizes(21)),
    ("squeezenet1_1", InputSizes(17)),
    ("vgg", InputSizes(32)),
    ("vit_h_14", InputSizes(14, 14)),
    ("vit_b_16", InputSizes(16, 16)),
    ("vit_l_16", InputSizes(16, 16)),
    ("vit_b_32", InputSizes(32, 32)),
    ("vit_l_32", InputSizes(32, 32)),
)


def input_sizes(name: str) -> InputSizes:
    """The square input sizes model `name` (torchvision or reference) can read."""
    ref = reference_model(name)
    if ref is not None:
        return InputSizes(ref.min_image_size)
    return next(
        (sizes for prefix, sizes in _LIMITED_INPUTS if name.startswith(prefix)), InputSizes()
    )


def check_image_size(name: str, size: int) -> str | None:
    """None when model `name` can read size x size inputs, else the error and its fix."""
    sizes = input_sizes(name)
    if size >= sizes.least and size % sizes.step == 0:
        return None
    if sizes.step > 1:
        fits = max(sizes.least, -(-size // sizes.step) * sizes.step)
        return (
            f"image_size {size} does not fit {name}: it needs a multiple of {sizes.step} "
            f"(e.g. {fits})"
        )
    return (
        f"image_size {size} is too small for {name}: it needs at least {sizes.least} "
        "(below that a layer has no output)"
    )


def reference_model(name: str) -> ReferenceModel | None:
    """The reference model's metadata, or None for any other backbone."""
    return REFERENCE_MODELS.get(name).meta if name in REFERENCE_MODELS else None


def known_backbones() -> tuple[str, ...]:
    """Every model name a spec may use, sorted."""
    return tuple(sorted((*torchvision_classifiers(), *REFERENCE_MODELS.names())))


def check_backbone(name: str) -> str | None:
    """Return None when `name` is a usable model, else an error message that lists the fix."""
    if name in torchvision_classifiers() or name in REFERENCE_MODELS:
        return None
    close = difflib.get_close_matches(name, known_backbones(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"unknown backbone {name!r}{hint}; known: {', '.join(known_backbones()[:12])}, ... "
        "(any torchvision classification model, or a reference model: "
        f"{', '.join(REFERENCE_MODELS.names())})"
    )


def display_name(backbone: str) -> str:
    """Human name for tables and run names, e.g. resnet18 -> ResNet-18."""
    ref = reference_model(backbone)
    if ref is not None:
        return ref.display
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
