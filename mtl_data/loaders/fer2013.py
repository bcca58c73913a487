"""FER2013: fer2013.csv with emotion,pixels,Usage; pixels are 48x48 grayscale, row-major."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import mtl_data.drops as drops
from mtl_core.tasks import EMOTIONS
from mtl_data.loaders.base import Loader
from mtl_data.loaders.tabular import read_rows
from mtl_data.manifest import Manifest, ManifestBuilder

SIDE = 48
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def parse_pixels(text: str) -> np.ndarray | None:
    """(48, 48) uint8 from 2,304 space-separated integers in 0..255; None if it is not that."""
    values = text.split()
    if len(values) != SIDE * SIDE:
        return None
    try:
        arr = np.array(values, dtype=np.int64)
    except ValueError:
        return None
    if arr.min() < 0 or arr.max() > 255:
        return None
    return arr.astype(np.uint8).reshape(SIDE, SIDE)


class Fer2013Loader(Loader):
    """Emotion 0..6 in FER order; Training / PublicTest / PrivateTest -> train / val / test."""

    kind = "fer2013"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return self.metadata(root, opts)

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [root / "fer2013.csv"]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        builders = {s: ManifestBuilder() for s in USAGE.values()}
        columns = ("emotion", "pixels", "usage")

        def too_long() -> None:  # its Usage is unreadable: counted under train
            builders["train"].drop(drops.LONG_FIELD)

        for line, row in read_rows(root / "fer2013.csv", columns, too_long):
            split = USAGE.get(row["usage"])
            if split is None:
                builders["train"].drop(drops.BAD_SPLIT)  # no split to count it in
                continue
            b = builders[split]
            try:
                emotion = int(row["emotion"])
            except ValueError:
                emotion = -1
            if not 0 <= emotion < len(EMOTIONS):
                b.drop(drops.BAD_LABEL)
                continue
            pixels = parse_pixels(row["pixels"])
            if pixels is None:
                b.drop(drops.BAD_PIXELS)
                continue
            b.add(pixels, f"line {line}", {"emotion": float(emotion)})
        return {s: b.build(pixels=(SIDE, SIDE)) for s, b in builders.items()}
