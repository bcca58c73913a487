"""Training-time augmentation on tensors, so that it runs wherever the batch is (CPU or GPU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(
    images: torch.Tensor,
    generator: torch.Generator | None,
    hflip: bool,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> torch.Tensor:
    """Random horizontal flip and random-resized-crop jitter, per image, in one grid_sample.

    images: float (B, 3, H, W) on any device; returns the same shape, dtype and device.
    Each image gets a crop of area fraction s ~ U(scale) and aspect ratio r (log-uniform in
    `ratio`), i.e. width sqrt(s * r) and height sqrt(s / r) of the image's (both capped at
    1), at a uniformly random position inside the image, resized back to (H, W) with
    bilinear sampling; then, if `hflip`, a mirror with probability 1/2.
    generator: seeds the draws (None: torch's global generator); it may live on another
    device than `images`.
    """
    b = images.shape[0]
    if b == 0:
        return images
    dev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(b, 5, generator=generator, device=dev).to(images.device, torch.float32)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    r = torch.exp(log_r)
    w = torch.sqrt(s * r).clamp(max=1.0)  # crop size, fraction of the image side
    h = torch.sqrt(s / r).clamp(max=1.0)
    # Crop centre in normalised coordinates [-1, 1], keeping the crop inside the image.
    cx = (1 - w) * (2 * u[:, 2] - 1)
    cy = (1 - h) * (2 * u[:, 3] - 1)
    flip = torch.where((u[:, 4] < 0.5) & hflip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=images.device, dtype=torch.float32)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.to(images.dtype)
