"""SSR-Net (Yang et al., IJCAI 2018): soft stagewise regression for age, ~0.3 MB at 64x64.

Two streams (ReLU/avg-pool and tanh/max-pool) are fused at three stages. Stage k
predicts a distribution p_k over s_k bins, a per-bin shift eta_k (tanh) and a scale
delta_k (tanh); the age is

    age = V * sum_k sum_i p_k[i] * (i + lambda_local * eta_k[i])
              / prod_{j<=k} (s_j * (1 + lambda_d * delta_j))

with V = 100 years. p_k is a softmax here so each stage's term is an expectation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

V = 100.0  # years covered by the stagewise bins


def _block(cin: int, cout: int, act: nn.Module, pool: nn.Module | None) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), act]
    if pool is not None:
        layers.append(pool)
    return nn.Sequential(*layers)


class _Stage(nn.Module):
    """Fuses the two streams at one stage into (p, eta, delta)."""

    def __init__(self, cx: int, cs: int, pool: int, bins: int) -> None:
        super().__init__()
        self.x_proj = nn.Sequential(nn.Conv2d(cx, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(pool))
        self.s_proj = nn.Sequential(nn.Conv2d(cs, 10, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(pool))
        width = 10 * pool * pool
        self.feat = nn.Sequential(nn.Linear(width, 2 * bins), nn.ReLU())
        self.prob = nn.Linear(2 * bins, bins)
        self.shift = nn.Sequential(nn.Linear(2 * bins, bins), nn.Tanh())
        self.scale = nn.Sequential(nn.Linear(width, 1), nn.Tanh())

    def forward(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        fused = self.x_proj(x).flatten(1) * self.s_proj(s).flatten(1)  # (B, 10*pool^2)
        hidden = self.feat(fused)
        return self.prob(hidden).softmax(-1), self.shift(hidden), self.scale(fused).squeeze(-1)


class SSRNet(nn.Module):
    """SSR-Net; forward maps (B, 3, H, W) to ages in years, shape (B,)."""

    def __init__(
        self,
        bins: tuple[int, int, int] = (3, 3, 3),
        lambda_local: float = 1.0,
        lambda_d: float = 1.0,
    ) -> None:
        super().__init__()
        self.bins = bins
        self.lambda_local, self.lambda_d = lambda_local, lambda_d
        self.x_stream = nn.ModuleList(
            [
                _block(3, 32, nn.ReLU(), nn.AvgPool2d(2)),
                _block(32, 32, nn.ReLU(), nn.AvgPool2d(2)),
                _block(32, 32, nn.ReLU(), nn.AvgPool2d(2)),
                _block(32, 32, nn.ReLU(), None),
            ]
        )
        self.s_stream = nn.ModuleList(
            [
                _block(3, 16, nn.Tanh(), nn.MaxPool2d(2)),
                _block(16, 16, nn.Tanh(), nn.MaxPool2d(2)),
                _block(16, 16, nn.Tanh(), nn.MaxPool2d(2)),
                _block(16, 16, nn.Tanh(), None),
            ]
        )
        # Stage 1 reads the deepest features, stage 3 the shallowest (coarse to fine).
        self.stages = nn.ModuleList(
            [_Stage(32, 16, 1, bins[0]), _Stage(32, 16, 2, bins[1]), _Stage(32, 16, 4, bins[2])]
        )

    def forward(self, images: Tensor) -> Tensor:
        xs, ss = [], []
        x, s = images, images
        for bx, bs in zip(self.x_stream, self.s_stream, strict=True):
            x, s = bx(x), bs(s)
            xs.append(x)
            ss.append(s)
        taps = [(xs[3], ss[3]), (xs[2], ss[2]), (xs[1], ss[1])]
        age = torch.zeros(images.shape[0], device=images.device)
        denom = torch.ones_like(age)
        for stage, (fx, fs), n in zip(self.stages, taps, self.bins, strict=True):
            p, eta, delta = stage(fx, fs)
            idx = torch.arange(n, device=images.device, dtype=p.dtype)
            denom = denom * n * (1 + self.lambda_d * delta)
            age = age + (p * (idx + self.lambda_local * eta)).sum(-1) / denom
        return age * V
