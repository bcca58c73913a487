"""Backbones split into trunk + feature width; heads; reference models; registries in step."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mtl_core.backbones import REFERENCE_MODELS, torchvision_classifiers
from trainables.checkpoint import load_matching
from trainables.models import build_model, count_parameters
from trainables.models.backbones import build_trunk

# One per family, built for real on the CPU.
FAMILIES = [
    "resnet18",
    "alexnet",
    "mobilenet_v3_small",
    "squeezenet1_0",
    "regnet_x_400mf",
    "googlenet",
]


def test_backbone_names_read_from_source_are_torchvisions_own():
    assert set(torchvision_classifiers()) == set(
        torchvision.models.list_models(module=torchvision.models)
    )


@pytest.mark.parametrize("entry", list(REFERENCE_MODELS), ids=lambda e: e.name)
def test_every_reference_model_builds_its_tasks(entry):
    model = build_model(entry.name, entry.meta.tasks, image_size=64)
    assert set(model.heads) == set(entry.meta.tasks)


@pytest.mark.parametrize("name", FAMILIES)
def test_trunk_outputs_its_feature_width(name):
    size = 64 if name != "alexnet" else 96
    trunk, dim = build_trunk(name, image_size=size)
    trunk.eval()
    with torch.no_grad():
        out = trunk(torch.rand(2, 3, size, size))
    assert out.shape == (2, dim)


def test_every_torchvision_classifier_splits_on_the_meta_device():
    skipped = {n for n in torchvision_classifiers() if n.startswith("regnet")}  # init needs data
    for name in sorted(set(torchvision_classifiers()) - skipped):
        size = 224 if name.startswith(("vit", "swin", "maxvit", "inception")) else 64
        with torch.device("meta"):
            trunk, dim = build_trunk(name, image_size=size)
            out = trunk(torch.zeros(2, 3, size, size))
        assert out.shape == (2, dim), name


def test_multitask_model_returns_a_dict_of_task_outputs():
    model = build_model("resnet18", ["age", "gender", "emotion", "smile"], image_size=32)
    out = model(torch.rand(3, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "age": (3,),
        "gender": (3, 2),
        "emotion": (3, 7),
        "smile": (3, 2),
    }


def test_dex_model_predicts_years_through_101_bins():
    model = build_model("dex", ["age"], image_size=32)
    out = model(torch.rand(2, 3, 32, 32))["age"]
    assert out.shape == (2, 101)
    years = model.heads["age"].predict(out)
    assert ((years >= 0) & (years <= 100)).all()


def test_ssrnet_is_compact_and_outputs_years():
    model = build_model("ssrnet", ["age"])
    assert count_parameters(model) * 4 < 0.35e6  # about 0.3 MB of fp32 weights
    out = model(torch.rand(2, 3, 64, 64))["age"]
    assert out.shape == (2,)


def test_pretrained_trunk_and_matching_heads_load_into_a_downstream_model():
    torch.manual_seed(0)
    pre = build_model("resnet18", ["age", "gender"], image_size=32)
    torch.manual_seed(1)
    down = build_model("resnet18", ["age", "emotion"], image_size=32)
    loaded = load_matching(down, pre.state_dict())
    assert loaded == ["heads.age", "trunk"]
    for k, v in pre.trunk.state_dict().items():
        assert torch.equal(down.trunk.state_dict()[k], v)
    assert torch.equal(down.heads["age"].fc.weight, pre.heads["age"].fc.weight)


def test_imagenet_weights_offline_is_a_clear_error(monkeypatch, tmp_path):
    from trainables.models import backbones

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(backbones.ImageNetWeightsUnavailable, match="imagenet_weights: false"):
        backbones.fetch_imagenet_weights("resnet18")
