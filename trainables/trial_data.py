"""The data one trial reads: its sources' splits, the training batches and age statistics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_core.budget import trial_budget
from mtl_core.errors import DataError
from mtl_core.trial import TrialConfig
from mtl_data.cache import CachedSplit, load_split
from mtl_data.source import resolve_source
from trainables.batches import MultiSourceBatches, StepBatches
from trainables.objective import trivial_metrics

Parts = list[tuple[CachedSplit, tuple[str, ...]]]  # each source's split, and its tasks


@dataclass
class TrialData:
    """The splits one trial reads, grouped by source, and its training budget."""

    train: MultiSourceBatches | StepBatches  # per_epoch | matched
    val: Parts
    test: Parts
    init_age: float  # train-set mean age, years (the regression head's starting point)
    age_scale: float  # train-set std of ages, years (the regression head's loss scale)
    age_baseline: float  # val MAE of predicting init_age for every image
    total_steps: int  # optimizer steps S over the whole trial
    steps_per_epoch: float  # what one `epoch` of the schedule is, in steps
    trivial: dict[str, float] = field(default_factory=dict)  # trivial/<split>/<metric>

    def images_per_step(self) -> dict[str, int]:
        """Each task's own labelled images per optimizer step."""
        if isinstance(self.train, StepBatches):
            return self.train.images_per_step()
        return {
            t: b
            for (_, ts), b in zip(self.train.parts, self.train.per_part, strict=True)
            for t in ts
        }

    def budget_metrics(self) -> dict[str, float]:
        """`budget/steps`, and per task the images seen and passes over its train split."""
        sizes = {t: len(split) for split, ts in self.train.parts for t in ts}
        out: dict[str, float] = {"budget/steps": self.total_steps}
        for task, per_step in self.images_per_step().items():
            out[f"budget/{task}_images"] = self.total_steps * per_step
            out[f"budget/{task}_passes"] = self.total_steps * per_step / sizes[task]
        return out

    def data_metrics(self) -> dict[str, float]:
        """Per task and split, the images with its label (`data/<task>_<split>_images`) and
        the samples its source dropped (`data/<task>_<split>_dropped`, every reason)."""
        out: dict[str, float] = {}
        for split, part, tasks in self._splits():
            dropped = sum(part.stats.get("dropped", {}).values())
            for task in tasks:
                out[f"data/{task}_{split}_images"] = int(np.isfinite(part.labels[task]).sum())
                out[f"data/{task}_{split}_dropped"] = dropped
        return out

    def drops(self) -> str:
        """The samples dropped, by source, split and reason, in words (tag
        mtl_sweep.data_drops); "none" when nothing was."""
        said = []
        for split, part, _ in self._splits():
            reasons = {k: v for k, v in part.stats.get("dropped", {}).items() if v}
            if reasons:
                what = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
                said.append(f"{part.source} ({split}): {what}")
        return "; ".join(said) or "none"

    def _splits(self) -> Iterator[tuple[str, CachedSplit, tuple[str, ...]]]:
        """(split, one source's split, its tasks) for train, val and test."""
        for split, parts in (("train", self.train.parts), ("val", self.val), ("test", self.test)):
            for part, tasks in parts:
                yield split, part, tasks

    def describe(self) -> str:
        """The budget in words, for the trial's log (tag mtl_sweep.budget)."""
        if isinstance(self.train, StepBatches):
            return self.train.describe(self.total_steps)
        return self.train.describe()


def resolve_sources(config: TrialConfig, cache_dir: Path) -> None:
    """Resolve every source the trial reads: its tasks' and the budget's reference.

    A synthetic source that another process is still generating (the driver renders the
    faces while the first actors start) is waited for here; one nobody generates is
    generated. The trainable calls this before its clock and its MLflow run start.
    """
    for task in config.tasks:
        resolve_source(config.sources[task], config.role(task), cache_dir, progress=False)
    reference = config.budget_reference
    if reference is not None:
        resolve_source(*reference, cache_dir, progress=False)


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
    batches, total, per_epoch = _budget(config, parts["train"], cache_dir)
    init_age, scale, baseline = 35.0, 20.0, math.nan  # unused without an age task
    if "age" in config.tasks:
        ages = np.concatenate([s.labels["age"] for s, ts in parts["train"] if "age" in ts])
        init_age, scale = float(np.nanmean(ages)), float(np.nanstd(ages))
        val_ages = np.concatenate([s.labels["age"] for s, ts in parts["val"] if "age" in ts])
        baseline = float(np.nanmean(np.abs(val_ages - init_age)))
    trivial = trivial_metrics(parts["train"], parts["val"], parts["test"], config.tasks)
    return TrialData(
        batches, parts["val"], parts["test"], init_age, scale, baseline, total, per_epoch, trivial
    )


def _budget(
    config: TrialConfig, train: Parts, cache_dir: Path
) -> tuple[MultiSourceBatches | StepBatches, int, float]:
    """The training batches, the total steps S and the steps of one schedule epoch, by the
    budget rule of mtl_core/budget.py on the splits this trial loaded."""
    t = config.train
    n_ref = None
    if (reference := config.budget_reference) is not None:
        ref = resolve_source(*reference, cache_dir)
        n_ref = len(load_split(ref, "train", t.image_size, cache_dir))
        if n_ref == 0:
            raise DataError(f"no usable train images in {ref}, which sizes the budget")
    budget = trial_budget(config, [len(split) for split, _ in train], n_ref)
    assert budget.steps is not None and budget.steps_per_epoch is not None  # sizes are known
    if config.matched:
        batches: MultiSourceBatches | StepBatches = StepBatches(train, t.batch_size, config.seed)
    else:
        batches = MultiSourceBatches(
            train, t.batch_size, config.epoch_rule, config.seed, t.steps_per_epoch
        )
    return batches, budget.steps, budget.steps_per_epoch
