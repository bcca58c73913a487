"""`mtl-sweep data check`: per source and split, the usable samples, the drops by reason and
the label distribution, read from the decoded cache (which checking builds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tabulate import tabulate

from mtl_core.sources import SOURCE_TASKS, SPLITS
from mtl_core.tasks import EMOTIONS
from mtl_data.cache import CachedSplit, load_split
from mtl_data.source import ResolvedSource

BINARY_NAMES = {"gender": ("female", "male"), "smile": ("not smiling", "smiling")}


def label_distribution(values: np.ndarray, task: str, age_std: np.ndarray | None = None) -> str:
    """One line describing a task's labels: counts per class, or age statistics (years)."""
    known = values[np.isfinite(values)]
    missing = len(values) - len(known)
    tail = f"; {missing} unlabelled" if missing else ""
    if len(known) == 0:
        return f"no labels{tail}"
    if task == "age":
        text = (
            f"mean {known.mean():.1f}, sd {known.std():.1f}, "
            f"range {known.min():.1f}..{known.max():.1f} years"
        )
        if age_std is not None and np.isfinite(age_std).any():
            text += f"; std known for {int(np.isfinite(age_std).sum())}"
        return text + tail
    names = EMOTIONS if task == "emotion" else BINARY_NAMES[task]
    counts = np.bincount(known.astype(np.int64), minlength=len(names))
    parts = [f"{n} {c} ({100 * c / len(known):.0f}%)" for n, c in zip(names, counts, strict=False)]
    return ", ".join(parts) + tail


def check_source(
    src: ResolvedSource, used_by: Sequence[str], image_size: int, cache_dir: Path, progress: bool
) -> str:
    """The report for one source: a table of counts and one of label distributions."""
    splits: dict[str, CachedSplit] = {
        s: load_split(src, s, image_size, cache_dir, progress) for s in SPLITS
    }
    counts = []
    for name, split in splits.items():
        dropped = split.stats["dropped"]
        text = ", ".join(f"{r} {n}" for r, n in sorted(dropped.items())) or "-"
        counts.append((name, split.stats["usable"], sum(dropped.values()), text))
    labels = []
    for name, split in splits.items():
        for task in SOURCE_TASKS[src.kind]:
            std = split.age_std if task == "age" else None
            labels.append((name, task, label_distribution(split.labels[task], task, std)))
    title = f"{src.kind} at {src.root}  (used by: {', '.join(used_by)}; {image_size}px cache)"
    return "\n".join(
        [
            title,
            tabulate(counts, headers=("split", "usable", "dropped", "dropped by reason")),
            "",
            tabulate(labels, headers=("split", "task", "labels")),
        ]
    )


def empty_splits(src: ResolvedSource, image_size: int, cache_dir: Path) -> list[str]:
    """The splits of `src` with no usable sample (trials read all three), from the cache."""
    return [
        s for s in SPLITS if load_split(src, s, image_size, cache_dir, False).stats["usable"] == 0
    ]
