"""The trivial predictor of each task, and the search objective built on it.

The trivial predictor knows only the train split: it predicts the mean train age for
every image, and the most frequent train class of gender, emotion and smile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_data.cache import CachedSplit

Parts = Sequence[tuple[CachedSplit, tuple[str, ...]]]


def _labels(parts: Parts, task: str) -> np.ndarray:
    values = [s.labels[task] for s, ts in parts if task in ts]
    out = np.concatenate(values) if values else np.empty(0, np.float32)
    return out[np.isfinite(out)]


def trivial_metrics(
    train: Parts, val: Parts, test: Parts, tasks: Sequence[str]
) -> dict[str, float]:
    """`trivial/<split>/<task>_<metric>` on val and test, from train's mean age or
    majority class (the class with the lowest id on ties). A split without a task's
    labels gives no value for it."""
    out: dict[str, float] = {}
    for task in tasks:
        seen = _labels(train, task)
        if not len(seen):
            continue
        metric = PRIMARY_METRIC[task].name
        if task == "age":
            guess = float(seen.mean())
        else:
            guess = float(np.bincount(seen.astype(np.int64)).argmax())
        for split, parts in (("val", val), ("test", test)):
            y = _labels(parts, task)
            if not len(y):
                continue
            value = np.abs(y - guess).mean() if task == "age" else (y == guess).mean()
            out[f"{C.TRIVIAL}{split}/{metric}"] = float(value)
    return out


def relative_objective(
    val: Mapping[str, float], trivial: Mapping[str, float], tasks: Sequence[str]
) -> float:
    """The `relative` objective (higher is better): the mean over the trial's tasks of its
    validation improvement over the trivial predictor, scale-free:

        age:         1 - MAE / MAE_trivial
        accuracies:  (acc - acc_trivial) / (1 - acc_trivial)

    0 is the trivial predictor, 1 a perfect one. A single-task trial's objective is its
    task's term. Example: age MAE 8 against a trivial 10 gives 0.2; gender accuracy 0.8
    against a trivial 0.6 gives 0.5; together 0.35. NaN when a metric is missing.
    """
    terms = []
    for task in tasks:
        metric = PRIMARY_METRIC[task].name
        got, base = val.get(metric, math.nan), trivial.get(f"{C.TRIVIAL}val/{metric}", math.nan)
        if task == "age":
            terms.append(1.0 - got / max(base, 1e-9))
        else:
            terms.append((got - base) / max(1.0 - base, 1e-9))
    return float(sum(terms) / len(terms)) if terms else math.nan


def val_loss_objective(val: Mapping[str, float], tasks: Sequence[str]) -> float:
    """The `val_loss` objective (higher is better): minus the mean over the trial's tasks
    of each task's validation loss per image (`<task>_loss` from evaluate)."""
    losses = [val.get(f"{t}_loss", math.nan) for t in tasks]
    return -float(sum(losses) / len(losses)) if losses else math.nan


def objective(name: str, val: Mapping[str, float], trivial: Mapping[str, float], tasks) -> float:
    """The named objective (`relative` or `val_loss`) of one validation."""
    if name == "val_loss":
        return val_loss_objective(val, tasks)
    return relative_objective(val, trivial, tasks)
