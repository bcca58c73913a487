"""GradNorm (Chen et al., 2018).

The network minimises sum_t w_t L_t. After each backward, the weights w move to balance
the gradient norms G_t = ||grad_W w_t L_t|| on the last shared layer W towards
mean(G) * r_t^alpha, where r_t = (L_t / L_t(0)) / mean_k (L_k / L_k(0)) is task t's
relative inverse training rate. The weights are renormalised to sum to the number of tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from trainables.weighting.base import Weighting


class GradNorm(Weighting):
    """Learned task weights with their own optimizer."""

    retain_graph = True

    def __init__(self, tasks, weights, alpha: float = 1.5, lr: float = 0.025, **options) -> None:
        super().__init__(tasks, weights)
        self.alpha = alpha
        self.w = nn.ParameterDict({t: nn.Parameter(torch.ones(())) for t in self.tasks})
        self.opt = torch.optim.Adam(self.w.parameters(), lr=lr)
        self.initial: dict[str, float] = {}  # L_t(0): each task's first observed loss

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        # The network sees the weights as constants; they learn only from the GradNorm loss.
        return sum(self.w[t].detach() * loss for t, loss in losses.items())

    def after_backward(self, losses: Mapping[str, Tensor], shared: Sequence[nn.Parameter]) -> None:
        tasks = [t for t in losses if losses[t].requires_grad]
        if len(tasks) < 2 or not shared:
            return
        for t in tasks:
            self.initial.setdefault(t, float(losses[t].detach()))
        norms = []
        for t in tasks:
            grads = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
            g = torch.sqrt(sum((x.float() ** 2).sum() for x in grads if x is not None))
            norms.append(self.w[t] * g.detach())
        norms_t = torch.stack(norms)  # (T,) G_t
        ratio = torch.tensor(
            [float(losses[t].detach()) / max(self.initial[t], 1e-12) for t in tasks],
            device=norms_t.device,
        )
        rel = ratio / ratio.mean()
        target = (norms_t.mean() * rel**self.alpha).detach()
        gn_loss = (norms_t - target).abs().sum()
        self.opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(gn_loss, [self.w[t] for t in tasks])
        for t, g in zip(tasks, grads, strict=True):
            self.w[t].grad = g
        self.opt.step()
        with torch.no_grad():
            for p in self.w.values():
                p.clamp_(min=1e-3)
            scale = len(self.tasks) / sum(p for p in self.w.values())
            for p in self.w.values():
                p.mul_(scale)

    def weights(self) -> dict[str, float]:
        return {t: float(p.detach()) for t, p in self.w.items()}

    def get_extra_state(self) -> Any:
        return {"initial": self.initial, "opt": self.opt.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        self.initial = dict(state["initial"])
        self.opt.load_state_dict(state["opt"])
