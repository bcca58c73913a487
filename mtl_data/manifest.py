"""A split as a loader reads it: the images to decode and their labels, before decoding."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mtl_core.tasks import TASKS


@dataclass
class Manifest:
    """One split of one source.

    images: absolute file paths, or already-decoded (N, h, w) / (N, h, w, 3) uint8 pixels
        (FER2013 keeps its pixels in the CSV).
    boxes: (N, 4) float64 face boxes [x1, y1, x2, y2] in pixels with 0-based edges; a NaN
        row means no box (the decoder takes the centred square).
    labels: task -> (N,) float32 for every task in TASKS; NaN = no label.
    """

    images: list[str] | np.ndarray
    names: list[str]  # one identifier per sample (relative path or row id), for reports
    boxes: np.ndarray
    labels: dict[str, np.ndarray]
    age_std: np.ndarray  # (N,) float32 per-image std of the age label (ChaLearn), NaN unknown
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> count, before decoding
    # The folder every image path must stay inside once symlinks are resolved; None: no
    # check (pixels in memory). See decode.decode_file.
    image_root: str | None = None

    def __len__(self) -> int:
        return len(self.names)


class ManifestBuilder:
    """Collects a split's rows one at a time, then builds its `Manifest`."""

    def __init__(self, image_root: str | None = None) -> None:
        self.image_root = image_root  # see Manifest.image_root
        self.images: list = []
        self.names: list[str] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.labels: dict[str, list[float]] = {t: [] for t in TASKS}
        self.age_std: list[float] = []
        self.dropped: Counter[str] = Counter()

    def add(
        self,
        image: str | np.ndarray,
        name: str,
        labels: dict[str, float],
        age_std: float = math.nan,
        box: tuple[float, float, float, float] | None = None,
    ) -> None:
        """Add one sample; tasks missing from `labels` get NaN (no label)."""
        self.images.append(image)
        self.names.append(name)
        self.boxes.append(box if box is not None else (math.nan,) * 4)
        for task, values in self.labels.items():
            values.append(labels.get(task, math.nan))
        self.age_std.append(age_std)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count `count` samples dropped for `reason` (see mtl_data.drops)."""
        self.dropped[reason] += count

    def build(self, pixels: tuple[int, ...] | None = None) -> Manifest:
        """The manifest; `pixels` = the per-image shape when images are arrays (FER2013)."""
        if pixels is not None:
            images: list[str] | np.ndarray = (
                np.stack(self.images) if self.images else np.zeros((0, *pixels), np.uint8)
            )
        else:
            images = list(self.images)
        return Manifest(
            images=images,
            names=list(self.names),
            boxes=np.asarray(self.boxes, np.float64).reshape(-1, 4),
            labels={t: np.asarray(v, np.float32) for t, v in self.labels.items()},
            age_std=np.asarray(self.age_std, np.float32),
            dropped=Counter(self.dropped),
            image_root=self.image_root,
        )


def seeded_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Assign n items to splits at random but reproducibly: (n,) array of split names.

    A permutation drawn from `seed` puts the first round(n * test_fraction) items in test,
    the next round(n * val_fraction) in val and the rest in train. The same (n, fractions,
    seed) always gives the same assignment.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    out = np.full(n, "train", dtype=object)
    out[order[:n_test]] = "test"
    out[order[n_test : n_test + n_val]] = "val"
    return out


def grouped_split(
    groups: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Like `seeded_split`, but all items of a group (one person) land in the same split.

    groups: one identifier per item. A permutation drawn from `seed` orders the distinct
    groups; whole groups go to test until it holds round(n * test_fraction) items or
    more, then to val until it holds round(n * val_fraction) more, the rest to train. So
    the fractions count images, and a split overshoots by at most one group. With every
    group a single item it puts exactly as many items in each split as `seeded_split`.
    """
    n = len(groups)
    names, inverse, sizes = np.unique(
        np.asarray(groups, dtype=object).astype(str), return_inverse=True, return_counts=True
    )
    order = np.random.default_rng(seed).permutation(len(names))
    starts = np.cumsum(sizes[order]) - sizes[order]  # items before each group, in order
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    is_test = starts < n_test
    in_test = int(sizes[order][is_test].sum())
    is_val = ~is_test & (starts < in_test + n_val)
    by_group = np.full(len(names), "train", dtype=object)
    by_group[order[is_test]] = "test"
    by_group[order[is_val]] = "val"
    return by_group[inverse.reshape(-1)]
