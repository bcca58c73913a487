"""A shared trunk plus one head per task; forward returns dict[task, Tensor]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainables.models.heads import Head

# Inputs arrive as floats in [0, 1]; ImageNet statistics suit both scratch and pretrained.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MultiTaskNet(nn.Module):
    """trunk: (B, 3, H, W) -> (B, F); heads: task -> Head on F features."""

    def __init__(self, trunk: nn.Module, heads: dict[str, Head]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.trunk((images - self.mean) / self.std)
        return {task: head(features) for task, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The last shared weight tensor (GradNorm measures task gradients there)."""
        weights = [p for p in self.trunk.parameters() if p.ndim >= 2 and p.requires_grad]
        return weights[-1:]
