"""Homoscedastic uncertainty weighting (Kendall et al., 2018).

L = sum_t exp(-s_t) L_t + s_t, with s_t = log sigma_t^2 learned with the network.
The logged weight of task t is exp(-s_t).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from trainables.weighting.base import Weighting


class Uncertainty(Weighting):
    """Learned log-variances, one per task, starting at 0 (weight 1)."""

    def __init__(self, tasks, weights, **options) -> None:
        super().__init__(tasks, weights)
        self.log_var = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks})

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        return sum(
            torch.exp(-self.log_var[t]) * loss + self.log_var[t] for t, loss in losses.items()
        )

    def weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-s.detach())) for t, s in self.log_var.items()}

    def optimizer_parameters(self) -> list[nn.Parameter]:
        return list(self.log_var.values())
