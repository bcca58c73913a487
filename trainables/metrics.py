"""Metrics accumulated per image over a whole split (never a mean of batch means).

Directions come from `mtl_core.tasks` (PRIMARY_METRIC / EXTRA_METRICS): age MAE and the
epsilon-error are lower-is-better, accuracies higher-is-better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mtl_core.tasks import TASK_METRICS, Metric

METRICS: dict[str, Metric] = {m.name: m for ms in TASK_METRICS.values() for m in ms}


def absolute_errors(pred: Tensor, target: Tensor) -> Tensor:
    """|prediction - label| per image, in years. MAE is their mean over the whole split."""
    return (pred.float() - target.float()).abs()


def epsilon_errors(pred: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """ChaLearn epsilon-error per image: 1 - exp(-(x - mu)^2 / (2 sigma^2)), in [0, 1].

    x is the prediction, mu and sigma the image's apparent-age mean and std of votes.
    Example: x = 30, mu = 25, sigma = 5 gives 1 - exp(-0.5) = 0.3935.
    """
    sigma = std.float().clamp_min(1e-6)
    return 1.0 - torch.exp(-((pred.float() - mean.float()) ** 2) / (2 * sigma**2))


class SplitMetrics:
    """Running sums over a split; `compute` gives `<task>_<metric>` values."""

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = tuple(tasks)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _add(self, name: str, values: Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(values.double().sum())
        self.counts[name] = self.counts.get(name, 0) + int(values.numel())

    def update(
        self,
        preds: Mapping[str, Tensor],
        labels: Mapping[str, Tensor],
        mask: Mapping[str, Tensor],
        age_std: Tensor | None = None,
    ) -> None:
        """Add one batch. preds: task -> (B,) predictions (years or class ids)."""
        for task in self.tasks:
            if task not in preds:
                continue
            m = mask[task]
            if not bool(m.any()):
                continue
            p, y = preds[task][m], labels[task][m]
            if task == "age":
                self._add("age_mae", absolute_errors(p, y))
                if age_std is not None:
                    s = age_std[m]
                    known = torch.isfinite(s)
                    if bool(known.any()):
                        self._add("age_eps", epsilon_errors(p[known], y[known], s[known]))
            else:
                self._add(f"{task}_acc", (p.long() == y.long()).float())

    def compute(self) -> dict[str, float]:
        """Mean over every image seen, per metric."""
        return {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k]}


def selection_score(val: Mapping[str, float], tasks: Sequence[str], age_baseline: float) -> float:
    """The model-selection rule: lower is better.

    The mean over the trial's tasks of a scale-free error: 1 - accuracy for gender,
    emotion and smile; MAE / baseline MAE for age, where the baseline predicts the
    training-set mean age for every val image. The epoch with the lowest score is kept
    (the earliest on ties), and the reported test metrics come from it.
    """
    errs = []
    for task in tasks:
        if task == "age":
            errs.append(val.get("age_mae", math.inf) / max(age_baseline, 1e-9))
        else:
            errs.append(1.0 - val.get(f"{task}_acc", 0.0))
    return float(sum(errs) / len(errs)) if errs else math.inf
