"""Each weighting strategy runs a few steps and behaves as specified."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtl_core.registry import UnknownName
from mtl_core.weightings import WEIGHTINGS
from trainables.weighting import Weighting, build_weighting
from trainables.weighting.dwa import dwa_weights

TASKS = ("age", "gender", "smile")


def _losses(net: nn.Module, scale=(1.0, 2.0, 3.0)) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    out = net(torch.randn(16, 4))
    return {
        t: out[:, i].pow(2).mean() * s for i, (t, s) in enumerate(zip(TASKS, scale, strict=False))
    }


def _step(strategy, net, opt):
    losses = _losses(net)
    total = strategy.combine(losses)
    opt.zero_grad()
    total.backward(retain_graph=strategy.retain_graph)
    strategy.after_backward(losses, [net.weight])
    opt.step()
    return losses, total


@pytest.mark.parametrize("entry", list(WEIGHTINGS), ids=lambda e: e.name)
def test_every_registered_weighting_is_a_strategy(entry):
    assert issubclass(entry.load(), Weighting)


def test_an_unknown_weighting_lists_the_known():
    with pytest.raises(UnknownName, match="known: fixed, uncertainty, dwa, gradnorm"):
        build_weighting("pcgrad", TASKS, {}, {})


def test_fixed_is_the_weighted_sum_and_ignores_absent_tasks():
    w = build_weighting("fixed", TASKS, {"age": 1.0, "gender": 0.1, "smile": 2.0}, {})
    losses = {"age": torch.tensor(3.0), "smile": torch.tensor(0.5)}  # gender has no labels
    assert float(w.combine(losses)) == pytest.approx(3.0 + 1.0)
    assert w.weights() == {"age": 1.0, "gender": 0.1, "smile": 2.0}


def test_uncertainty_log_variances_receive_gradients_and_train():
    net = nn.Linear(4, 3)
    w = build_weighting("uncertainty", TASKS, {}, {})
    opt = torch.optim.SGD([*net.parameters(), *w.optimizer_parameters()], lr=0.1)
    losses = _losses(net)
    total = w.combine(losses)
    # L = sum exp(-s) L_t + s with s = 0 at the start.
    assert float(total.detach()) == pytest.approx(sum(float(v.detach()) for v in losses.values()))
    total.backward()
    for s in w.optimizer_parameters():
        assert s.grad is not None and float(s.grad) != 0.0
    before = w.weights()
    opt.step()
    assert w.weights() != before


def test_dwa_weights_sum_to_the_number_of_tasks_and_favour_slow_tasks():
    w = build_weighting("dwa", TASKS, {}, {"temperature": 2.0})
    assert w.weights() == dict.fromkeys(TASKS, 1.0)  # first two epochs
    w.end_epoch({"age": 1.0, "gender": 1.0, "smile": 1.0})
    assert w.weights() == dict.fromkeys(TASKS, 1.0)
    w.end_epoch({"age": 0.5, "gender": 1.0, "smile": 1.2})  # age fell fastest, smile rose
    got = w.weights()
    assert sum(got.values()) == pytest.approx(3.0)
    assert got["age"] < got["gender"] < got["smile"]
    # The formula: K * softmax(r / T).
    r = torch.tensor([0.5, 1.0, 1.2]) / 2.0
    expected = 3 * torch.softmax(r, 0)
    assert list(got.values()) == pytest.approx(expected.tolist())


def test_dwa_state_survives_a_checkpoint():
    w = build_weighting("dwa", TASKS, {}, {})
    w.end_epoch({"age": 1.0, "gender": 1.0, "smile": 1.0})
    w.end_epoch({"age": 0.5, "gender": 1.0, "smile": 1.2})
    fresh = build_weighting("dwa", TASKS, {}, {})
    fresh.load_state_dict(w.state_dict())
    assert fresh.weights() == pytest.approx(w.weights())
    assert dwa_weights(fresh.history, TASKS, 2.0) == pytest.approx(w.weights())


def test_gradnorm_moves_weights_and_keeps_their_sum():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    w = build_weighting("gradnorm", TASKS, {}, {"alpha": 1.5, "lr": 0.05})
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(5):
        _step(w, net, opt)
    got = w.weights()
    assert sum(got.values()) == pytest.approx(3.0, abs=1e-4)
    assert got != dict.fromkeys(TASKS, 1.0)
    assert w.optimizer_parameters() == []  # the weights have their own optimizer


def test_gradnorm_weights_get_no_gradient_from_the_network_loss():
    net = nn.Linear(4, 3)
    w = build_weighting("gradnorm", TASKS, {}, {})
    w.combine(_losses(net)).backward()
    assert all(p.grad is None for p in w.parameters())


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_every_strategy_trains_a_few_steps_with_finite_loss(name):
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    w = build_weighting(name, TASKS, dict.fromkeys(TASKS, 1.0), {})
    opt = torch.optim.SGD([*net.parameters(), *w.optimizer_parameters()], lr=0.01)
    for _epoch in range(3):
        losses, total = _step(w, net, opt)
        assert torch.isfinite(total)
        w.end_epoch({t: float(v.detach()) for t, v in losses.items()})
    assert set(w.weights()) == set(TASKS)
