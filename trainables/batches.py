"""Batches for training and evaluation, assembled straight from the memory-mapped cache.

A trial whose tasks come from several sources draws from each of them in every batch.
Shorter sources cycle (reshuffled each cycle); nothing is truncated to the shortest. The
epoch's length follows an explicit rule, which `describe()` states for the log.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from mtl_core.budget import EPOCH_RULES, batch_shares, epoch_steps
from mtl_core.errors import DataError
from mtl_core.tasks import order_tasks
from mtl_data.cache import CachedSplit


@dataclass
class Batch:
    """One batch on the CPU.

    images: (B, 3, H, W) uint8.
    labels: task -> (B,) float32 for each of the trial's tasks; NaN where missing.
    mask: task -> (B,) bool, True where the label is present and its task belongs to the
        part of the trial the sample came from.
    age_std: (B,) float32 per-image std of the age label; NaN where unknown.
    """

    images: torch.Tensor
    labels: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    age_std: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _gather(
    split: CachedSplit, index: np.ndarray, provides: Sequence[str], tasks: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Rows `index` (sorted, for memmap locality) of a split: images, labels and age_std.

    Labels of tasks in `tasks` that this split does not provide are NaN (masked).
    """
    images = split.images[index]  # fancy indexing copies the rows out of the memmap
    labels = {}
    for t in tasks:
        if t in provides:
            labels[t] = split.labels[t][index]
        else:
            labels[t] = np.full(len(index), np.nan, np.float32)
    if split.age_std is not None and "age" in provides:
        age_std = split.age_std[index]
    else:
        age_std = np.full(len(index), np.nan, np.float32)
    return images, labels, age_std


def _to_batch(images: np.ndarray, labels: dict[str, np.ndarray], age_std: np.ndarray) -> Batch:
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # (B, 3, H, W)
    lab = {t: torch.from_numpy(v.astype(np.float32, copy=False)) for t, v in labels.items()}
    return Batch(
        images=x,
        labels=lab,
        mask={t: ~torch.isnan(v) for t, v in lab.items()},
        age_std=torch.from_numpy(age_std.astype(np.float32, copy=False)),
    )


def eval_jobs(
    split: CachedSplit, tasks: tuple[str, ...], batch_size: int
) -> list[Callable[[], Batch]]:
    """The whole split in order as batch-building jobs (see `prefetch`); labels for `tasks`."""
    tasks = order_tasks(tasks)
    return [
        partial(_eval_batch, split, np.arange(start, min(start + batch_size, len(split))), tasks)
        for start in range(0, len(split), batch_size)
    ]


def _eval_batch(split: CachedSplit, index: np.ndarray, tasks: tuple[str, ...]) -> Batch:
    return _to_batch(*_gather(split, index, tasks, tasks))


def eval_batches(split: CachedSplit, tasks: tuple[str, ...], batch_size: int) -> Iterator[Batch]:
    """The whole split in order, without shuffling or augmentation; labels for `tasks`."""
    for job in eval_jobs(split, tasks, batch_size):
        yield job()


class MultiSourceBatches:
    """Training batches for one trial, drawing from every source it needs.

    parts: each source's train split and the trial's tasks it provides (the labels of
    its other tasks are masked out). batch_size is split evenly across parts (the
    remainder goes to the first ones), so every batch holds samples of every part.
    A part that runs out cycles: it starts a fresh permutation. Epoch length (steps):
    - "longest": one pass over the longest part, max_i ceil(n_i / b_i);
    - "sum": as many samples as all parts hold together, ceil(sum_i n_i / batch_size);
    capped by steps_per_epoch. The order depends only on (seed, epoch, part), so a resumed
    trial sees the same batches.
    """

    def __init__(
        self,
        parts: list[tuple[CachedSplit, tuple[str, ...]]],
        batch_size: int,
        epoch_rule: str,
        seed: int,
        steps_per_epoch: int | None = None,
    ) -> None:
        if not parts:
            raise ValueError("MultiSourceBatches needs at least one part")
        if epoch_rule not in EPOCH_RULES:
            raise ValueError(f"unknown epoch rule {epoch_rule!r}; known: {', '.join(EPOCH_RULES)}")
        if batch_size < len(parts):
            raise ValueError(
                f"batch size {batch_size} is smaller than the number of sources ({len(parts)}); "
                "every batch needs at least one sample of each"
            )
        empty = [str(s.source or i) for i, (s, _) in enumerate(parts) if len(s) == 0]
        if empty:
            raise DataError(f"no usable training images in {empty[0]}; run mtl-sweep data check")
        self.parts = [(split, order_tasks(tasks)) for split, tasks in parts]
        self.tasks = order_tasks(t for _, ts in self.parts for t in ts)
        self.batch_size = batch_size
        self.epoch_rule = epoch_rule
        self.seed = seed
        self.per_part = batch_shares(batch_size, len(parts))
        sizes = [len(split) for split, _ in self.parts]
        self.rule_steps = rule_steps = epoch_steps(sizes, batch_size, epoch_rule)
        self.steps = min(rule_steps, steps_per_epoch) if steps_per_epoch else rule_steps

    def __len__(self) -> int:
        return self.steps

    def describe(self) -> str:
        """The epoch rule in words, with the numbers, for the trial's log."""
        sizes = [len(s) for s, _ in self.parts]
        parts = "; ".join(
            f"{'+'.join(ts)} from {s.source or 'source ' + str(i)}: {n} images, {b} per batch"
            f" ({self.steps * b / n:.2f} passes)"
            for i, ((s, ts), n, b) in enumerate(zip(self.parts, sizes, self.per_part, strict=True))
        )
        if self.epoch_rule == "longest":
            rule = f"one pass over the longest source ({max(sizes)} images)"
        else:
            rule = f"as many samples as all sources hold together ({sum(sizes)} images)"
        capped = (
            f", capped at {self.steps} by steps_per_epoch" if self.steps < self.rule_steps else ""
        )
        return (
            f"epoch rule {self.epoch_rule!r}: {rule} = {self.rule_steps} steps of "
            f"{self.batch_size}{capped}; shorter sources cycle. {parts}"
        )

    def _stream(self, part: int, epoch: int, count: int) -> np.ndarray:
        """The first `count` indices of a part's order in `epoch`: fresh permutations back
        to back, each drawn from (seed, epoch, part, cycle)."""
        n = len(self.parts[part][0])
        cycles = math.ceil(count / n)
        perms = [
            np.random.default_rng([self.seed & 0xFFFFFFFF, epoch, part, c]).permutation(n)
            for c in range(cycles)
        ]
        return np.concatenate(perms)[:count]

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of epoch `epoch`, deterministic given (seed, epoch)."""
        for job in self.epoch_jobs(epoch):
            yield job()

    def epoch_jobs(self, epoch: int) -> list[Callable[[], Batch]]:
        """The batches of epoch `epoch` as jobs that each build one batch when called, in
        order; deterministic given (seed, epoch). `prefetch` runs them on worker threads."""
        streams = [self._stream(p, epoch, self.steps * b) for p, b in enumerate(self.per_part)]
        return [
            partial(
                _assemble,
                self.parts,
                self.tasks,
                [s[step * b : (step + 1) * b] for s, b in zip(streams, self.per_part, strict=True)],
            )
            for step in range(self.steps)
        ]


def _assemble(
    parts: list[tuple[CachedSplit, tuple[str, ...]]], tasks: tuple[str, ...], index: list
) -> Batch:
    """One batch: rows `index[i]` of part i, concatenated part after part."""
    images, labels, stds = [], {t: [] for t in tasks}, []
    for (split, provides), rows in zip(parts, index, strict=True):
        x, lab, std = _gather(split, np.sort(rows), provides, tasks)
        images.append(x)
        for t in tasks:
            labels[t].append(lab[t])
        stds.append(std)
    return _to_batch(
        np.concatenate(images),
        {t: np.concatenate(v) for t, v in labels.items()},
        np.concatenate(stds),
    )


class StepBatches:
    """Matched budgets: `per_source` images from every source at every optimizer step.

    Each source is read in fresh permutations back to back, each drawn from (seed, part,
    cycle), so a trial's stream is one long deterministic sequence of steps; `steps(start,
    count)` yields any stretch of it (a resumed trial continues exactly where it stopped).
    Tasks sharing a source (gender and smile in CelebA) share its images.
    """

    def __init__(
        self, parts: list[tuple[CachedSplit, tuple[str, ...]]], per_source: int, seed: int
    ) -> None:
        empty = [str(s.source or i) for i, (s, _) in enumerate(parts) if len(s) == 0]
        if empty:
            raise DataError(f"no usable training images in {empty[0]}; run mtl-sweep data check")
        self.parts = [(split, order_tasks(tasks)) for split, tasks in parts]
        self.tasks = order_tasks(t for _, ts in self.parts for t in ts)
        self.per_source = per_source
        self.seed = seed

    def _rows(self, part: int, start: int, count: int) -> np.ndarray:
        """Positions [start, start + count) of a part's endless stream of permutations."""
        n = len(self.parts[part][0])
        first, last = start // n, (start + count - 1) // n
        perms = [
            np.random.default_rng([self.seed & 0xFFFFFFFF, part, c]).permutation(n)
            for c in range(first, last + 1)
        ]
        offset = start - first * n
        return np.concatenate(perms)[offset : offset + count]

    def step_jobs(self, start: int, count: int) -> list[Callable[[], Batch]]:
        """The batches of optimizer steps start .. start + count - 1, as jobs (`prefetch`)."""
        b = self.per_source
        return [
            partial(
                _assemble,
                self.parts,
                self.tasks,
                [self._rows(p, step * b, b) for p in range(len(self.parts))],
            )
            for step in range(start, start + count)
        ]

    def steps(self, start: int, count: int) -> Iterator[Batch]:
        """The batches of optimizer steps start .. start + count - 1."""
        for job in self.step_jobs(start, count):
            yield job()

    def images_per_step(self) -> dict[str, int]:
        """Each task's own labelled images per step (its source's share)."""
        return {t: self.per_source for _, ts in self.parts for t in ts}

    def describe(self, total_steps: int) -> str:
        """The budget in words, with the numbers, for the trial's log."""
        parts = "; ".join(
            f"{'+'.join(ts)} from {s.source or 'source ' + str(i)}: {len(s)} images, "
            f"{self.per_source} per step ({total_steps * self.per_source / len(s):.2f} passes)"
            for i, (s, ts) in enumerate(self.parts)
        )
        return f"matched budget: {total_steps} steps, {self.per_source} images per source; {parts}"
