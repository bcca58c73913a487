"""SSR-Net (Yang et al., IJCAI 2018): soft stagewise regression for age, ~0.3 MB at 64x64.

Follows the authors' Keras model (shamangary/SSR-Net, SSRNET_model.py):
- two streams of four unpadded 3x3 conv + BN blocks: 32 channels, ReLU, 2x2 average
  pooling; and 16 channels, tanh, 2x2 max pooling (no pooling after the fourth block);
- stage 1 reads the fourth block, stage 2 the pooled output of block 2, stage 3 the
  pooled output of block 1; each stream goes through a 1x1 conv to 10 channels (ReLU),
  is pooled (stage 2: 4x4, stage 3: 8x8; average for one stream, max for the other) and
  flattened;
- per stream, dropout 0.2 and a dense layer of s_k units (ReLU); the two are multiplied,
  then a dense layer of 2 s_k units (ReLU) gives p_k (s_k units, ReLU, not softmax) and
  the local shifts eta_k (tanh); the dynamic range delta_k (tanh) reads the product of
  the two streams' flattened features;
- age = V * sum_k sum_i p_k[i] * (i + lambda_local * eta_k[i])
            / prod_{j<=k} (s_j * (1 + lambda_d * delta_j)),   V = 101 years.

Keras defaults are kept where PyTorch's differ: BN eps 1e-3 and momentum 0.01 (Keras
0.99), Glorot-uniform weights and zero biases. The merge runs in float32 even under
autocast (bf16 would round ages to about half a year).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

V = 101.0  # years covered by the stagewise bins (ages 0..100)
MIN_IMAGE_SIZE = 38  # smallest input that leaves the fourth block at least 1x1
DROPOUT = 0.2
STAGE_CHANNELS = 10  # the 1x1 conv each stage reads a stream through
STAGE_POOL = (1, 4, 8)  # pooling before each stage's flatten (1: none)


def _block(cin: int, cout: int, act: nn.Module, pool: nn.Module | None) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), act]
    if pool is not None:
        layers.append(pool)
    return nn.Sequential(*layers)


def _stream(width: int, act: type[nn.Module], pool: type[nn.Module]) -> nn.ModuleList:
    """Four blocks; the first three end in 2x2 pooling."""
    return nn.ModuleList(
        [_block(3 if i == 0 else width, width, act(), pool(2) if i < 3 else None) for i in range(4)]
    )


def tap_sizes(image_size: int) -> tuple[int, int, int]:
    """Side length of the maps stages 1, 2 and 3 read: block 4, pooled block 2, block 1."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"ssrnet needs train.image_size >= {MIN_IMAGE_SIZE} (built for 64), not {image_size}"
        )
    b1 = (image_size - 2) // 2
    b2 = (b1 - 2) // 2
    b3 = (b2 - 2) // 2
    return b3 - 2, b2 // STAGE_POOL[1], b1 // STAGE_POOL[2]


class _Stream(nn.Module):
    """One stream's read-out at a stage: 1x1 conv (ReLU), pooling, flatten."""

    def __init__(self, cin: int, pool: nn.Module) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(cin, STAGE_CHANNELS, 1), nn.ReLU(), pool)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, 10 * h * w)
        return self.proj(x).flatten(1)


class _Stage(nn.Module):
    """Fuses the two streams at one stage into (p, eta, delta)."""

    def __init__(self, cx: int, cs: int, pool: int, side: int, bins: int) -> None:
        super().__init__()
        self.x_read = _Stream(cx, nn.AvgPool2d(pool) if pool > 1 else nn.Identity())
        self.s_read = _Stream(cs, nn.MaxPool2d(pool) if pool > 1 else nn.Identity())
        width = STAGE_CHANNELS * side * side
        self.x_mix = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(width, bins), nn.ReLU())
        self.s_mix = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(width, bins), nn.ReLU())
        self.delta = nn.Sequential(nn.Linear(width, 1), nn.Tanh())
        self.feat = nn.Sequential(nn.Linear(bins, 2 * bins), nn.ReLU())
        self.prob = nn.Sequential(nn.Linear(2 * bins, bins), nn.ReLU())
        self.shift = nn.Sequential(nn.Linear(2 * bins, bins), nn.Tanh())

    def forward(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        fx, fs = self.x_read(x), self.s_read(s)  # (B, width) each
        delta = self.delta(fx * fs).squeeze(-1)  # (B,)
        hidden = self.feat(self.x_mix(fx) * self.s_mix(fs))  # (B, 2 * bins)
        return self.prob(hidden), self.shift(hidden), delta


class SSRNet(nn.Module):
    """SSR-Net; forward maps (B, 3, H, W) to ages in years, shape (B,), float32."""

    def __init__(
        self,
        image_size: int = 64,
        bins: tuple[int, int, int] = (3, 3, 3),
        lambda_local: float = 1.0,
        lambda_d: float = 1.0,
    ) -> None:
        super().__init__()
        self.bins = bins
        self.lambda_local, self.lambda_d = lambda_local, lambda_d
        self.x_stream = _stream(32, nn.ReLU, nn.AvgPool2d)
        self.s_stream = _stream(16, nn.Tanh, nn.MaxPool2d)
        sides = tap_sizes(image_size)
        self.stages = nn.ModuleList(
            [_Stage(32, 16, STAGE_POOL[k], sides[k], bins[k]) for k in range(3)]
        )
        for m in self.modules():  # Keras defaults: Glorot-uniform weights, zero biases
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, images: Tensor) -> Tensor:
        xs, ss = [], []
        x, s = images, images
        for bx, bs in zip(self.x_stream, self.s_stream, strict=True):
            x, s = bx(x), bs(s)
            xs.append(x)
            ss.append(s)
        # Coarse to fine: stage 1 reads block 4, stage 2 block 2, stage 3 block 1.
        taps = [(xs[3], ss[3]), (xs[1], ss[1]), (xs[0], ss[0])]
        outputs = [stage(fx, fs) for stage, (fx, fs) in zip(self.stages, taps, strict=True)]
        return self.merge(outputs)

    def merge(self, outputs: list[tuple[Tensor, Tensor, Tensor]]) -> Tensor:
        """The stagewise sum of the module docstring, in float32; (B,) years."""
        with torch.autocast(outputs[0][0].device.type, enabled=False):
            age = torch.zeros_like(outputs[0][2], dtype=torch.float32)
            denom = torch.ones_like(age)
            for (p, eta, delta), n in zip(outputs, self.bins, strict=True):
                p, eta, delta = p.float(), eta.float(), delta.float()
                idx = torch.arange(n, device=p.device, dtype=p.dtype)
                denom = denom * n * (1 + self.lambda_d * delta)
                age = age + (p * (idx + self.lambda_local * eta)).sum(-1) / denom
            return age * V
