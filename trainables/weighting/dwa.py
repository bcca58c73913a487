"""Dynamic weight average (Liu et al., 2019).

w_t(e) = K exp(r_t / T) / sum_k exp(r_k / T), with r_t = L_t(e-1) / L_t(e-2), the ratio
of task t's mean loss over the two previous epochs, K tasks and temperature T. The
weights sum to K; the first two epochs use w_t = 1.

Here an "epoch" is a round of the trial (`end_epoch` is called after each): an epoch under
the per_epoch budget, `train.eval_every` steps under the matched one, where a budget of
a few epochs would otherwise keep every weight at 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from trainables.weighting.base import Weighting


class DWA(Weighting):
    """Weights from the relative descent rate of each task's loss."""

    def __init__(self, tasks, weights, temperature: float = 2.0, **options) -> None:
        super().__init__(tasks, weights)
        self.temperature = temperature
        self.history: list[dict[str, float]] = []  # mean loss per task, per finished epoch
        self.current = dict.fromkeys(self.tasks, 1.0)

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        return sum(self.current[t] * loss for t, loss in losses.items())

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        self.history.append({t: float(epoch_losses.get(t, float("nan"))) for t in self.tasks})
        self.current = dwa_weights(self.history, self.tasks, self.temperature)

    def weights(self) -> dict[str, float]:
        return dict(self.current)

    def get_extra_state(self) -> Any:
        return {"history": self.history}

    def set_extra_state(self, state: Any) -> None:
        self.history = list(state["history"])
        self.current = dwa_weights(self.history, self.tasks, self.temperature)


def dwa_weights(
    history: list[dict[str, float]], tasks: tuple[str, ...], temperature: float
) -> dict[str, float]:
    """DWA weights for the next epoch from the per-epoch mean losses so far."""
    if len(history) < 2:
        return dict.fromkeys(tasks, 1.0)
    prev, prev2 = history[-1], history[-2]
    ratios = torch.tensor([prev[t] / prev2[t] if prev2[t] > 0 else 1.0 for t in tasks])
    ratios = torch.nan_to_num(ratios, nan=1.0, posinf=1.0, neginf=1.0)
    w = len(tasks) * torch.softmax(ratios / temperature, dim=0)
    return {t: float(v) for t, v in zip(tasks, w, strict=True)}
