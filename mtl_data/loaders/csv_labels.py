"""A plain CSV for any other gender/smile data: image,gender,smile,split.

gender: 1 male / 0 female; smile: 1 / 0; an empty cell (or NA / NaN) is no label.
split: train, val (or valid) or test. Image paths are relative to the CSV's folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mtl_data.drops as drops
from mtl_core.sources import SPLITS
from mtl_data.loaders.base import Loader
from mtl_data.loaders.tabular import read_rows
from mtl_data.manifest import Manifest, ManifestBuilder

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "test": "test"}
MISSING = {"", "na", "nan", "none"}


def parse_binary(text: str) -> float | None:
    """1 / 0 as a float, NaN for an empty cell, None for anything else."""
    t = text.strip().lower()
    if t in MISSING:
        return math.nan
    try:
        v = float(t)
    except ValueError:
        return None
    return v if v in (0.0, 1.0) else None


class CsvLoader(Loader):
    """Gender and smile from one CSV, with the split given per row."""

    kind = "csv"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return self.metadata(root, opts)

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [root / opts.get("file", "labels.csv")]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        builders = {s: ManifestBuilder(image_root=str(root)) for s in SPLITS}
        columns = ("image", "gender", "smile", "split")
        for _, row in read_rows(self.metadata(root, opts)[0], columns):
            split = SPLIT_NAMES.get(row["split"].lower())
            if split is None:
                builders["train"].drop(drops.BAD_SPLIT)  # belongs to no split
                continue
            b = builders[split]
            gender, smile = parse_binary(row["gender"]), parse_binary(row["smile"])
            if not row["image"] or gender is None or smile is None:
                b.drop(drops.BAD_LABEL)
                continue
            if math.isnan(gender) and math.isnan(smile):
                b.drop(drops.NO_LABELS)
                continue
            b.add(str(root / row["image"]), row["image"], {"gender": gender, "smile": smile})
        return {s: b.build() for s, b in builders.items()}
