"""The data one trial reads: its sources' splits, the training batches and age statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl_core.errors import DataError
from mtl_core.trial import TrialConfig
from trainables.data import CachedSplit, MultiSourceBatches, load_split, resolve_source

Parts = list[tuple[CachedSplit, tuple[str, ...]]]  # each source's split, and its tasks


@dataclass
class TrialData:
    """The splits one trial reads, grouped by source."""

    train: MultiSourceBatches
    val: Parts
    test: Parts
    init_age: float  # train-set mean age, years (the regression head's starting point)
    age_scale: float  # train-set std of ages, years (the regression head's loss scale)
    age_baseline: float  # val MAE of predicting init_age for every image


def load_data(config: TrialConfig, cache_dir: Path) -> TrialData:
    """Resolve the trial's sources (only its own tasks'), load splits, build the batches."""
    size = config.train.image_size
    by_source: dict[object, list[str]] = {}
    for task in config.tasks:
        source = resolve_source(config.sources[task], config.role(task), cache_dir)
        by_source.setdefault(source, []).append(task)
    parts: dict[str, Parts] = {
        split: [
            (load_split(src, split, size, cache_dir), tuple(ts)) for src, ts in by_source.items()
        ]
        for split in ("train", "val", "test")
    }
    for split in ("val", "test"):
        empty = [s.source for s, _ in parts[split] if len(s) == 0]
        if empty:
            raise DataError(f"no usable {split} images in {empty[0]}; run mtl-sweep data check")
    batches = MultiSourceBatches(
        parts["train"],
        batch_size=config.train.batch_size,
        epoch_rule=config.epoch_rule,
        seed=config.seed,
        steps_per_epoch=config.train.steps_per_epoch,
    )
    init_age, scale, baseline = 35.0, 20.0, math.nan  # unused without an age task
    if "age" in config.tasks:
        ages = np.concatenate([s.labels["age"] for s, ts in parts["train"] if "age" in ts])
        init_age, scale = float(np.nanmean(ages)), float(np.nanstd(ages))
        val_ages = np.concatenate([s.labels["age"] for s, ts in parts["val"] if "age" in ts])
        baseline = float(np.nanmean(np.abs(val_ages - init_age)))
    return TrialData(batches, parts["val"], parts["test"], init_age, scale, baseline)
