"""Task heads. Each owns its forward, its loss and how its output becomes a prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtl_core.tasks import AGE_RANGE, NUM_CLASSES

AGE_BINS = AGE_RANGE[1] - AGE_RANGE[0] + 1  # DEX: one class per year, 0..100


class Head(nn.Module):
    """A task head: forward(features) -> raw output; loss(raw, target); predict(raw)."""

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean loss over the given (already masked) samples."""
        raise NotImplementedError

    def predict(self, output: Tensor) -> Tensor:
        """Predictions: years (float) for age, class indices (long) otherwise."""
        raise NotImplementedError

    def restandardise(self, mean: float, scale: float) -> None:
        """Adopt a train split's age mean and std (years); a no-op for heads without them."""


class AgeRegression(Head):
    """One linear output, standardised: years = mean + scale * z.

    The loss is L1 (or smooth-L1) in years divided by `scale` (the train-set std of
    ages), so it sits on the scale of the classification losses. In raw years, an age
    loss of ~20 swamps cross-entropies of ~0.7 in a multi-task trial.
    """

    def __init__(
        self, dim: int, loss: str = "l1", init_age: float = 35.0, scale: float = 20.0
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 1)
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("mean", torch.tensor(float(init_age)))  # years
        self.register_buffer("scale", torch.tensor(max(float(scale), 1.0)))  # years
        self.loss_name = loss

    def forward(self, features: Tensor) -> Tensor:  # (B, F) -> (B,) years, float32
        # In float32 even under bf16 autocast: bf16 would round ages to 0.25-0.5 years.
        with torch.autocast(features.device.type, enabled=False):
            z = self.fc(features.float()).squeeze(-1)
            return self.mean + self.scale * z

    def restandardise(self, mean: float, scale: float) -> None:
        """Move to a new (mean, scale) in years, keeping the function the head computes.

        years = m + s * (w.x + b) = m' + s' * (w'.x + b') with w' = w * s / s' and
        b' = (b * s + m - m') / s'. A pretrained head thus keeps its predictions while
        its loss scale (1 / s') becomes the downstream train split's.
        """
        new_scale = max(float(scale), 1.0)
        old_mean, old_scale = float(self.mean), float(self.scale)
        with torch.no_grad():
            self.fc.weight.mul_(old_scale / new_scale)
            self.fc.bias.mul_(old_scale).add_(old_mean - mean).div_(new_scale)
            self.mean.fill_(float(mean))
            self.scale.fill_(new_scale)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.loss_name == "smooth_l1":  # beta = 1 standard deviation
            return F.smooth_l1_loss(output.float() / self.scale, target / self.scale)
        return F.l1_loss(output.float(), target) / self.scale

    def predict(self, output: Tensor) -> Tensor:
        return output.float()


class AgeDEX(Head):
    """DEX: softmax over ages 0..100; the prediction is the softmax expectation, not argmax."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, AGE_BINS)
        self.register_buffer("ages", torch.arange(AGE_RANGE[0], AGE_RANGE[1] + 1).float())

    def forward(self, features: Tensor) -> Tensor:  # (B, F) -> (B, 101) logits
        return self.fc(features)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        classes = target.round().clamp(*AGE_RANGE).long() - AGE_RANGE[0]
        return F.cross_entropy(output.float(), classes)

    def predict(self, output: Tensor) -> Tensor:
        return dex_expectation(output, self.ages)


def dex_expectation(logits: Tensor, ages: Tensor) -> Tensor:
    """E[age] = sum_i softmax(logits)_i * age_i, in years. (B, K) -> (B,)."""
    return (logits.float().softmax(dim=-1) * ages).sum(dim=-1)


class Classifier(Head):
    """K-way linear classifier with cross-entropy (gender and smile: K=2; emotion: K=7)."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, classes)

    def forward(self, features: Tensor) -> Tensor:  # (B, F) -> (B, K) logits
        return self.fc(features)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output.float(), target.long())

    def predict(self, output: Tensor) -> Tensor:
        return output.argmax(dim=-1)


class PassThroughAge(AgeRegression):
    """For models that already output years (SSR-Net): no layer of its own."""

    def __init__(self, loss: str = "l1", scale: float = 20.0) -> None:
        nn.Module.__init__(self)
        self.register_buffer("scale", torch.tensor(max(float(scale), 1.0)))
        self.loss_name = loss

    def forward(self, features: Tensor) -> Tensor:  # (B,) or (B, 1) years
        return features.reshape(-1).float()

    def restandardise(self, mean: float, scale: float) -> None:
        """Only the loss scale: the network's output is already in years."""
        self.scale.fill_(max(float(scale), 1.0))


def build_head(
    task: str, dim: int, age_head: str, age_loss: str, init_age: float, age_scale: float
) -> Head:
    """The head for `task` on features of width `dim`.

    init_age and age_scale (years): the train-set mean and std of ages, which set the
    regression head's starting point and loss scale.
    """
    if task == "age":
        if age_head == "dex":
            return AgeDEX(dim)
        return AgeRegression(dim, age_loss, init_age, age_scale)
    return Classifier(dim, NUM_CLASSES[task])
