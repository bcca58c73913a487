"""The loss-weighting interface. Hooks are no-ops, so the loop never asks which strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn


class Weighting(nn.Module):
    """Turns per-task losses into the one loss the network minimises.

    Tasks absent from a batch (no labels) are absent from `losses` and contribute nothing.
    """

    # True when `after_backward` needs the autograd graph kept alive (GradNorm).
    retain_graph: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float], **options: Any) -> None:
        super().__init__()
        self.tasks = tuple(tasks)

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The scalar to backpropagate."""
        raise NotImplementedError

    def after_backward(self, losses: Mapping[str, Tensor], shared: Sequence[nn.Parameter]) -> None:
        """Called after backward, before the optimizer step. No-op by default."""

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        """Called with the epoch's mean per-task losses. No-op by default."""

    def weights(self) -> dict[str, float]:
        """Current task weights, logged per epoch as `weight/<task>`."""
        raise NotImplementedError

    def optimizer_parameters(self) -> list[nn.Parameter]:
        """Parameters the main optimizer should train alongside the network."""
        return []
