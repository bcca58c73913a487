"""Inter-task affinity measured during training: TAG's lookahead (Fifty et al. 2021).

For tasks i and j on the same batch x,

    Z(i→j) = 1 − L_j(x; θ_s′(i), θ_j) / L_j(x; θ_s, θ_j),

where θ_s are the shared (trunk) parameters, θ_j task j's head, and θ_s′(i) is θ_s after one
step of the trial's own optimizer (its type, hyperparameters, current lr and state) on task
i's loss alone. Positive: a step for i lowers j's loss (i helps j); negative: it hurts.
L_j before the step is the training forward's own loss, so a measurement costs one backward
through the trunk per task plus one forward per task.

`params="last_shared"` steps only the trunk's last weight tensor (the layer GradNorm
measures task gradients at), and the rest of θ_s stays: the backward then stops at that
layer and the step touches a fraction of the parameters, for about a fifth of the cost on
ResNet-18 (docs/benchmarks.md). It is a proxy for TAG's Z, not TAG's Z: use one scope
throughout a comparison.

The training updates stay bit-identical with the probe on (the test checks it on the CPU):
the lookahead steps a copy of the shared parameters and of the optimizer state, its forwards
run on copies of the buffers (BatchNorm statistics), the global RNG is forked around it
(dropout), and `torch.autograd.grad` leaves every `.grad` alone.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from mtl_core import contract as C
from mtl_core.trial import TrialRequest
from trainables.batches import Batch
from trainables.models.multitask import MultiTaskNet
from trainables.step import StepContext, masked_losses

Pair = tuple[str, str]  # (i, j): the effect of a step on task i onto task j
SCOPES = ("trunk", "last_shared")  # train.affinity.params


class AffinityProbe:
    """Measures Z(i→j) every `every`-th step of each epoch (its first step included) and
    keeps epoch and whole-training means, which a resumed trial restores from its state."""

    def __init__(self, every: int, tasks: Sequence[str], params: str = "trunk") -> None:
        if every < 1:
            raise ValueError(f"affinity every must be >= 1, got {every}")
        if params not in SCOPES:
            raise ValueError(f"affinity params must be one of {SCOPES}, got {params!r}")
        self.every = every
        self.params = params
        self.tasks = tuple(tasks)
        self._epoch: dict[Pair, list[float]] = {}  # pair -> [sum, count] this epoch
        self._total: dict[Pair, list[float]] = {}  # pair -> [sum, count] over training
        self._lookahead: Lookahead | None = None  # its buffers, reused by every measurement

    def due(self, step: int) -> bool:
        """Whether to measure at this step of the epoch (0-based)."""
        return step % self.every == 0

    def measure(
        self,
        model: MultiTaskNet,
        images: Tensor,
        batch: Batch,
        losses: Mapping[str, Tensor],
        optimizer: torch.optim.Optimizer,
        ctx: StepContext,
    ) -> dict[Pair, float]:
        """Measure once (see `lookahead_affinity`) and add it to the means."""
        if self._lookahead is None or self._lookahead.optimizer is not optimizer:
            self._lookahead = Lookahead(optimizer, stepped_parameters(model, self.params))
        found = lookahead_affinity(model, images, batch, losses, optimizer, ctx, self._lookahead)
        for pair, z in found.items():
            for acc in (self._epoch, self._total):
                s = acc.setdefault(pair, [0.0, 0.0])
                s[0] += z
                s[1] += 1
        return found

    def end_epoch(self) -> dict[str, float]:
        """This epoch's means as `affinity/<i>_to_<j>` metrics, and a fresh epoch."""
        out = {C.affinity_metric(C.AFFINITY, *p): s / n for p, (s, n) in self._epoch.items()}
        self._epoch = {}
        return out

    def final_metrics(self) -> dict[str, float]:
        """Means over every measured step of training, as `affinity_mean/<i>_to_<j>`."""
        return {C.affinity_metric(C.AFFINITY_MEAN, *p): s / n for p, (s, n) in self._total.items()}

    def state_dict(self) -> dict[str, list[float]]:
        """The whole-training sums, for the trial's checkpoint."""
        return {f"{i}>{j}": list(v) for (i, j), v in self._total.items()}

    def load_state_dict(self, state: Mapping[str, Sequence[float]]) -> None:
        """Restore `state_dict()` (a resumed trial keeps its earlier epochs' measurements)."""
        self._total = {tuple(k.split(">", 1)): [float(v[0]), float(v[1])] for k, v in state.items()}


def probe_for(request: TrialRequest, state: Mapping[str, Any] | None) -> AffinityProbe | None:
    """The probe a trial asked for with `train.affinity.every` (None when off, for a
    single-task trial or a pretraining job), holding a resumed trial's earlier measurements."""
    every, tasks = request.execution.affinity_every, request.config.tasks
    if not every or len(tasks) < 2 or request.config.is_pretrain:
        return None
    probe = AffinityProbe(int(every), tasks, request.execution.affinity_params)
    if state is not None and state.get("affinity"):
        probe.load_state_dict(state["affinity"])
    return probe


def lookahead_affinity(
    model: MultiTaskNet,
    images: Tensor,
    batch: Batch,
    losses: Mapping[str, Tensor],
    optimizer: torch.optim.Optimizer,
    ctx: StepContext,
    lookahead: Lookahead | None = None,
    params: str = "trunk",
) -> dict[Pair, float]:
    """Z(i→j) for every ordered pair of tasks with labels in this batch (module docstring).

    `images` and `losses` are the training step's own input and per-task losses, with their
    autograd graph still alive; it is kept alive for the training backward that follows.
    Pairs whose L_j before the step is not positive and finite are left out. `lookahead`
    (built for this optimizer, and stepping its own parameters) saves re-allocating its
    copies on every call; without one, `params` says what to step: "trunk" or
    "last_shared" (module docstring).
    """
    tasks = [t for t in losses if losses[t].requires_grad]
    if len(tasks) < 2:
        return {}
    look = lookahead or Lookahead(optimizer, stepped_parameters(model, params))
    names, shared = look.names, look.shared
    before = torch.stack([losses[t].detach().float() for t in tasks]).tolist()
    heads = {n: p.detach() for n, p in model.named_parameters() if not n.startswith("trunk.")}
    # The lookahead forwards update BatchNorm statistics: on copies, never the model's.
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    out: dict[Pair, float] = {}
    with torch.random.fork_rng(**_rng_devices(ctx.device)):
        for i in tasks:
            grads = torch.autograd.grad(losses[i], shared, retain_graph=True, allow_unused=True)
            stepped = look.step(grads)
            params = {**heads, **dict(zip(names, stepped, strict=True)), **buffers}
            with torch.no_grad(), ctx.autocast():
                outputs = functional_call(model, params, (images,))
            after, _ = masked_losses(model, outputs, batch, ctx.device)
            after_values = torch.stack([after[t].float() for t in tasks]).tolist()
            for j, lj_before, lj_after in zip(tasks, before, after_values, strict=True):
                if j != i and 0.0 < lj_before < float("inf"):
                    out[(i, j)] = 1.0 - lj_after / lj_before
    return out


def stepped_parameters(model: MultiTaskNet, params: str = "trunk") -> list[tuple[str, Tensor]]:
    """The shared parameters the lookahead steps, named as in the whole model: every
    trainable trunk parameter, or ("last_shared") the trunk's last weight tensor."""
    named = [(f"trunk.{n}", p) for n, p in model.trunk.named_parameters() if p.requires_grad]
    if params == "last_shared":
        last = {id(p) for p in model.shared_parameters()}
        named = [(n, p) for n, p in named if id(p) in last]
    return named


class Lookahead:
    """One step of `optimizer`'s own type on copies of `shared`, with buffers kept between
    calls: on the CPU, allocating fresh copies of the parameters and optimizer state cost
    several times the step itself (page faults on every new tensor)."""

    def __init__(self, optimizer: torch.optim.Optimizer, shared: Sequence[tuple[str, Tensor]]):
        self.optimizer = optimizer
        self.names = [n for n, _ in shared]
        self.shared = [p for _, p in shared]
        self.copies = [p.detach().clone() for p in self.shared]
        group_of = {id(p): g for g, gr in enumerate(optimizer.param_groups) for p in gr["params"]}
        members: dict[int, list[Tensor]] = {}
        for p, c in zip(self.shared, self.copies, strict=True):
            members.setdefault(group_of[id(p)], []).append(c)
        self._order = list(members)  # the copy's group k mirrors optimizer group _order[k]
        settings = [self._settings(g) | {"params": cs} for g, cs in members.items()]
        self.look = type(optimizer)(settings, **_constructor_defaults(optimizer))

    def _settings(self, group: int) -> dict[str, Any]:
        return {k: v for k, v in self.optimizer.param_groups[group].items() if k != "params"}

    def step(self, grads: Sequence[Tensor | None]) -> list[Tensor]:
        """`shared` after one step with `grads` (lr as scheduled now, a copy of the
        optimizer's state: momentum, Adam moments, step count); the optimizer and the
        parameters are untouched. A None gradient leaves that parameter where it is."""
        with torch.no_grad():
            torch._foreach_copy_(self.copies, [p.detach() for p in self.shared])
        for k, g in enumerate(self._order):  # the scheduler moves lr between calls
            self.look.param_groups[k].update(self._settings(g))
        for p, c, g in zip(self.shared, self.copies, grads, strict=True):
            c.grad = None if g is None else g.detach()
            self._copy_state(p, c)
        self.look.step()
        for c in self.copies:
            c.grad = None
        return self.copies

    def _copy_state(self, p: Tensor, c: Tensor) -> None:
        source = self.optimizer.state.get(p)
        if not source:  # before the optimizer's first step: the step starts fresh, as its own
            self.look.state.pop(c, None)
            return
        target = self.look.state.get(c)
        if target is None or target.keys() != source.keys():
            self.look.state[c] = {k: _clone(v) for k, v in source.items()}
            return
        for k, v in source.items():
            t = target[k]
            if isinstance(v, Tensor) and isinstance(t, Tensor) and t.shape == v.shape:
                t.copy_(v)
            else:
                target[k] = _clone(v)


def _constructor_defaults(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's defaults that its constructor accepts (each group overrides them)."""
    accepted = inspect.signature(type(optimizer).__init__).parameters
    return {k: v for k, v in optimizer.defaults.items() if k in accepted}


def _clone(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, Tensor) else copy.deepcopy(value)


def _rng_devices(device: torch.device) -> dict[str, Any]:
    """fork_rng's arguments: the CPU generator always, plus the accelerator's own."""
    if device.type in ("cuda", "mps", "xpu"):
        return {"devices": [device.index or 0], "device_type": device.type}
    return {"devices": []}
