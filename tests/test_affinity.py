"""TAG's lookahead affinity: the formula against a direct computation, and the guarantee
that measuring it leaves training bit-identical on the CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from mtl_core import contract as C
from mtl_core.settings import AugmentSpec
from trainables.affinity import AffinityProbe, lookahead_affinity
from trainables.batches import Batch
from trainables.loop import train_one_epoch
from trainables.models.heads import AgeRegression, Classifier
from trainables.models.multitask import MultiTaskNet
from trainables.step import StepContext, masked_losses
from trainables.weighting import build_weighting

TASKS = ("age", "gender")
CPU = torch.device("cpu")


def tiny_model(dropout: float = 0.0) -> MultiTaskNet:
    """Conv + BatchNorm (+ dropout) trunk with an age and a gender head: (B, 3, 8, 8) in."""
    trunk = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(),
    )
    heads = {"age": AgeRegression(8, init_age=40.0, scale=15.0), "gender": Classifier(8, 2)}
    return MultiTaskNet(trunk, heads)


def batch(seed: int, n: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    gender = torch.randint(0, 2, (n,), generator=g).float()
    gender[0] = float("nan")  # one image without a gender label: masked out
    return Batch(
        images=torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
        labels={"age": torch.rand(n, generator=g) * 80, "gender": gender},
        mask={"age": torch.ones(n, dtype=torch.bool), "gender": ~gender.isnan()},
        age_std=torch.full((n,), float("nan")),
    )


def forward_losses(model: MultiTaskNet, b: Batch) -> tuple[torch.Tensor, dict]:
    x = b.images.float() / 255
    return x, masked_losses(model, model(x), b, CPU)[0]


def warmed_up(opt_name: str) -> tuple[MultiTaskNet, torch.optim.Optimizer]:
    """A model and optimizer after two steps, so momentum / Adam state is not empty."""
    torch.manual_seed(0)
    model = tiny_model().train()
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-2)
    for s in range(2):
        _, losses = forward_losses(model, batch(100 + s))
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    return model, opt


def direct_affinity(model, opt, b: Batch, i: str, j: str) -> float:
    """1 - L_j(after one optimizer step on L_i, trunk only) / L_j(before), on a deep copy."""
    m = copy.deepcopy(model)
    o = type(opt)(m.parameters(), lr=1.0)  # every setting comes from the state dict
    o.load_state_dict(copy.deepcopy(opt.state_dict()))
    _, losses = forward_losses(m, b)
    before = float(losses[j].detach())
    o.zero_grad(set_to_none=True)
    losses[i].backward()
    for p in m.heads.parameters():  # only the shared parameters take the lookahead step
        p.grad = None
    o.step()
    _, after = forward_losses(m, b)
    return 1.0 - float(after[j].detach()) / before


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_affinity_matches_a_direct_computation(opt_name):
    model, opt = warmed_up(opt_name)
    b = batch(7)
    expected = {
        (i, j): direct_affinity(model, opt, b, i, j) for i in TASKS for j in TASKS if i != j
    }
    x, losses = forward_losses(model, b)
    got = lookahead_affinity(model, x, b, losses, opt, StepContext(CPU))
    assert set(got) == {("age", "gender"), ("gender", "age")}
    for pair, z in expected.items():
        assert got[pair] == pytest.approx(z, rel=1e-4, abs=1e-6)
    assert any(abs(z) > 1e-4 for z in got.values())  # the step moved something


def sgd_closed_form(model: MultiTaskNet, b: Batch, lr: float, stepped) -> dict:
    """Z(i→j) = 1 - L_j(θ - lr ∇θ L_i) / L_j(θ) by hand, where θ = `stepped(model)`."""
    out = {}
    for i, j in (("age", "gender"), ("gender", "age")):
        m = copy.deepcopy(model)
        _, ls = forward_losses(m, b)
        params = stepped(m)
        grads = torch.autograd.grad(ls[i], params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
        _, after = forward_losses(m, b)
        out[(i, j)] = 1 - float(after[j].detach()) / float(ls[j].detach())
    return out


@pytest.mark.parametrize(
    ("params", "stepped"),
    [
        ("trunk", lambda m: list(m.trunk.parameters())),
        ("last_shared", lambda m: [m.trunk[6].weight]),  # the trunk's last weight tensor
    ],
)
def test_plain_sgd_affinity_is_the_closed_form(params, stepped):
    """For SGD without momentum or decay, on the whole trunk or its last weight only."""
    torch.manual_seed(1)
    model = tiny_model().train()
    lr = 0.5
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    b = batch(3)
    x, losses = forward_losses(model, b)
    got = lookahead_affinity(model, x, b, losses, opt, StepContext(CPU), params=params)
    for pair, expected in sgd_closed_form(model, b, lr, stepped).items():
        # Z is a difference of two near-equal float32 losses: compare it to float32
        # rounding of the ratio, not relative to Z itself
        assert got[pair] == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_last_shared_is_another_quantity_than_the_whole_trunks():
    torch.manual_seed(1)
    model = tiny_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    b = batch(3)
    x, losses = forward_losses(model, b)
    ctx = StepContext(CPU)
    last = lookahead_affinity(model, x, b, losses, opt, ctx, params="last_shared")
    whole = lookahead_affinity(model, x, b, losses, opt, ctx)
    for pair, z in last.items():
        assert z != pytest.approx(whole[pair], abs=1e-6)


def train(probe: AffinityProbe | None) -> tuple[MultiTaskNet, torch.optim.Optimizer, Tensor]:
    """Two epochs of five steps with dropout, BatchNorm and augmentation, from seed 0."""
    torch.manual_seed(0)
    model = tiny_model(dropout=0.3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    weighting = build_weighting("fixed", TASKS, dict.fromkeys(TASKS, 1.0), {})
    aug = AugmentSpec(hflip=True, scale=(0.7, 1.0), ratio=(0.9, 1.1))
    for epoch in range(2):
        ctx = StepContext(CPU, augment=aug, generator=torch.Generator().manual_seed(epoch))
        batches = [batch(10 * epoch + s) for s in range(5)]
        train_one_epoch(model, batches, weighting, opt, ctx, epoch, affinity=probe)
    return model, opt, torch.get_rng_state()


@pytest.mark.parametrize("params", ["trunk", "last_shared"])
def test_measuring_affinity_leaves_training_bit_identical(params):
    plain_model, plain_opt, plain_rng = train(None)
    probe = AffinityProbe(every=2, tasks=TASKS, params=params)
    probed_model, probed_opt, probed_rng = train(probe)
    plain, probed = plain_model.state_dict(), probed_model.state_dict()
    assert plain.keys() == probed.keys()
    for name in plain:  # weights and BatchNorm statistics
        assert torch.equal(plain[name], probed[name]), name
    for p, q in zip(plain_opt.state.values(), probed_opt.state.values(), strict=True):
        assert all(torch.equal(p[k], q[k]) for k in p)
    assert torch.equal(plain_rng, probed_rng)  # dropout drew the same numbers
    means = probe.final_metrics()
    assert set(means) == {"affinity_mean/age_to_gender", "affinity_mean/gender_to_age"}
    assert probe._total[("age", "gender")][1] == 6  # steps 0, 2, 4 of two epochs


def test_probe_means_per_epoch_and_over_training_and_resume():
    probe = AffinityProbe(every=3, tasks=TASKS)
    assert [s for s in range(7) if probe.due(s)] == [0, 3, 6]
    for z in (0.1, 0.3):
        probe._epoch.setdefault(("age", "gender"), [0.0, 0.0])
        acc = probe._total.setdefault(("age", "gender"), [0.0, 0.0])
        probe._epoch[("age", "gender")][0] += z
        probe._epoch[("age", "gender")][1] += 1
        acc[0] += z
        acc[1] += 1
    epoch = probe.end_epoch()
    assert epoch == {C.affinity_metric(C.AFFINITY, "age", "gender"): pytest.approx(0.2)}
    resumed = AffinityProbe(every=3, tasks=TASKS)
    resumed.load_state_dict(probe.state_dict())
    assert resumed.final_metrics() == {"affinity_mean/age_to_gender": pytest.approx(0.2)}
    assert C.parse_affinity_metric("affinity_mean/age_to_gender", C.AFFINITY_MEAN) == (
        "age",
        "gender",
    )
    assert C.parse_affinity_metric("test/age_mae", C.AFFINITY_MEAN) is None


def test_affinity_is_an_execution_setting_outside_the_key(write_spec):
    from mtl_core.errors import SpecError
    from mtl_sweep.expand import expand
    from mtl_sweep.spec.load import load_spec

    from .conftest import SWEEPS

    keys = [
        sorted(t.key for t in expand(load_spec(SWEEPS / "smoke.yaml", sets)).trials)
        for sets in ([], ["train.affinity.every=3"])
    ]
    assert keys[0] == keys[1]
    path = write_spec(
        "name: s\ngrid:\n  include:\n    - {tasks: all, train: {affinity: {every: 2}}}\n"
    )
    with pytest.raises(SpecError, match=r"grid\.include\[0\]\.train\.affinity"):
        expand(load_spec(path), str(path))


def test_a_trial_logs_affinity_with_the_same_key_and_the_same_results(tmp_path):
    from mtl_sweep.expand import expand
    from mtl_sweep.run.requests import RunContext, trial_request
    from mtl_sweep.spec.load import load_spec
    from mtl_sweep.store.tracker import Tracker
    from trainables.trainable import run_trial

    from .conftest import SWEEPS

    base = ["grid.pretrain=[none]", "grid.tasks=[all]", "train.epochs=1"]
    plain_spec = load_spec(SWEEPS / "smoke.yaml", base)
    probed_spec = load_spec(SWEEPS / "smoke.yaml", [*base, "train.affinity.every=1"])
    (plain,), (probed,) = expand(plain_spec).trials, expand(probed_spec).trials
    assert plain.key == probed.key  # an execution setting: the same trial
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment_id("direct", create=True)
    results = [
        run_trial(trial_request(t, RunContext(s, uri, exp, None, tmp_path / "cache")))
        for s, t in ((plain_spec, plain), (probed_spec, probed))
    ]
    tests = [{k: v for k, v in r.items() if k.startswith(C.TEST)} for r in results]
    assert tests[0] == tests[1]  # bit-identical training, so exactly the same test metrics
    run = tracker.client.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
    pairs = {(i, j) for i in plain.config.tasks for j in plain.config.tasks if i != j}
    means = {C.affinity_metric(C.AFFINITY_MEAN, i, j) for i, j in pairs}
    assert means <= set(run.data.metrics)
    assert run.data.params["run.affinity_every"] == "1"
    history = tracker.client.get_metric_history(run.info.run_id, "affinity/age_to_smile")
    # Matched budget: S = 48 / 16 = 3 steps, validated every step; each round's mean is
    # logged at the round's last optimizer step.
    assert sorted(m.step for m in history) == [1, 2, 3]
