"""Fixed weights from the spec: L = sum_t w_t L_t."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from trainables.weighting.base import Weighting


class Fixed(Weighting):
    """The spec's weights, unchanged through training."""

    def __init__(self, tasks, weights, **options) -> None:
        super().__init__(tasks, weights)
        self.fixed = {t: float(weights.get(t, 1.0)) for t in self.tasks}

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        return sum(self.fixed[t] * loss for t, loss in losses.items())

    def weights(self) -> dict[str, float]:
        return dict(self.fixed)
