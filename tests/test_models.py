"""Backbones split into trunk + feature width; heads; reference models; registries in step."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mtl_core.backbones import (
    REFERENCE_MODELS,
    check_image_size,
    input_sizes,
    torchvision_classifiers,
)
from mtl_core.settings import TrainSettings
from trainables import checkpoint as ckpt
from trainables.checkpoint import load_matching
from trainables.models import build_model, count_parameters
from trainables.models.backbones import build_trunk
from trainables.models.heads import AgeRegression
from trainables.models.ssrnet import SSRNet, V, tap_sizes

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


def _reads(name: str, size: int) -> bool:
    """Whether the trunk maps two size x size images to its feature width (meta device)."""
    try:
        with torch.device("meta"):
            trunk, dim = build_trunk(name, image_size=size)
            return tuple(trunk(torch.zeros(2, 3, size, size)).shape) == (2, dim)
    except (RuntimeError, ValueError, AssertionError):  # no output, or patches that don't tile
        return False


def test_every_torchvision_classifier_reads_its_smallest_input_and_no_smaller():
    # The spec refuses what input_sizes() rules out, so the table must be exact: the
    # smallest size a spec may ask for works, and one pixel (or one step) less does not.
    skipped = {n for n in torchvision_classifiers() if n.startswith("regnet")}  # init needs data
    floor = min(m.ge for m in TrainSettings.model_fields["image_size"].metadata if hasattr(m, "ge"))
    for name in sorted(set(torchvision_classifiers()) - skipped):
        sizes = input_sizes(name)
        least = max(sizes.least, -(-floor // sizes.step) * sizes.step)
        assert check_image_size(name, least) is None
        assert _reads(name, least), f"{name} cannot read {least} px: tighten the table"
        if least > floor and sizes.step == 1:  # stepped: MaxViT's strided stem also reads 223
            assert check_image_size(name, least - 1) is not None
            assert not _reads(name, least - 1), f"{name} reads {least - 1} px: relax the table"
        if sizes.step > 1:
            assert check_image_size(name, least + 1) is not None
            assert not _reads(name, least + 1), f"{name} reads {least + 1} px: relax the table"


def test_a_checkpointed_state_loads_back_with_its_module_versions(tmp_path):
    # MNASNet's loader refuses a state dict without the versions state_dict() records.
    model = build_model("mnasnet0_5", ["age"], image_size=32)
    ckpt.save({"best": ckpt.cpu_state(model)}, tmp_path / "resume.pt")
    again = build_model("mnasnet0_5", ["age"], image_size=32)
    again.load_state_dict(ckpt.load(tmp_path / "resume.pt")["best"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


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


def test_ssrnet_matches_the_authors_keras_model_at_64px():
    net = SSRNet(64)
    # Keras' model.summary() for SSR_net(64, [3, 3, 3], 1, 1) counts 40,915 parameters:
    # 40,531 trainable plus 384 BN moving means and variances.
    running = sum(b.numel() for n, b in net.named_buffers() if n.endswith(("_mean", "_var")))
    assert (count_parameters(net), running) == (40_531, 384)
    assert V == 101.0
    assert tap_sizes(64) == (4, 3, 3)  # block 4 (4x4), block 2 (14x14)/4, block 1 (31x31)/8
    convs = [m for m in net.x_stream.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.padding for c in convs] == [(0, 0)] * 4  # unpadded, as in Keras' default
    for stage, bins in zip(net.stages, (3, 3, 3), strict=True):
        # Per stream: dropout 0.2, then a dense layer of s_k units.
        assert isinstance(stage.x_mix[0], torch.nn.Dropout) and stage.x_mix[0].p == 0.2
        assert stage.x_mix[1].out_features == stage.s_mix[1].out_features == bins
        assert stage.feat[0].out_features == 2 * bins
        assert isinstance(stage.prob[1], torch.nn.ReLU)  # p_k is ReLU, not softmax
    # 10 channels x 4 x 4 at stage 1; 10 x 3 x 3 at stages 2 and 3.
    assert [s.x_mix[1].in_features for s in net.stages] == [160, 90, 90]


def test_ssrnet_merge_is_the_stagewise_formula():
    net = SSRNet(64, lambda_local=0.5, lambda_d=0.25)
    ones = torch.ones(1, 3)
    # Stage 1 alone: p = (0, 1, 0), no shift, delta 0 -> V * 1 / 3; stage 2 adds bin 2 with
    # shift 0.5 * 1 and delta 1 at stage 2: V * 2.5 / (3 * 3 * 1.25).
    outputs = [
        (torch.tensor([[0.0, 1.0, 0.0]]), 0 * ones, torch.zeros(1)),
        (torch.tensor([[0.0, 0.0, 1.0]]), ones, torch.ones(1)),
        (torch.zeros(1, 3), ones, torch.zeros(1)),
    ]
    expected = 101 * (1 / 3 + 2.5 / (3 * 3 * 1.25))
    assert float(net.merge(outputs)) == pytest.approx(expected)


def test_age_outputs_stay_float32_under_bf16_autocast():
    torch.manual_seed(0)
    head = AgeRegression(64, init_age=37.3, scale=13.1)
    with torch.no_grad():
        head.fc.weight.normal_()
    features = torch.randn(16, 64).bfloat16()  # what a trunk hands over under autocast
    with torch.no_grad():
        z = features.float() @ head.fc.weight.T + head.fc.bias  # (B, 1)
        expected = head.mean + head.scale * z.squeeze(-1)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out = head(features)
        ssr = build_model("ssrnet", ["age"]).eval()(torch.rand(2, 3, 64, 64))["age"]
    assert out.dtype == torch.float32 and ssr.dtype == torch.float32
    # In bf16 (8 bits of mantissa) ages near 40 would be off by up to 0.125 years.
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-3)


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
