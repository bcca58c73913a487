"""ChaLearn LAP 2016 apparent age: {train,valid,test}_gt.csv (image,mean,stdv) + image folders."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mtl_data.drops as drops
from mtl_data.loaders.base import Loader
from mtl_data.loaders.tabular import parse_float, read_rows
from mtl_data.manifest import Manifest, ManifestBuilder

FOLDERS = {"train": "train", "val": "valid", "test": "test"}


class ChalearnLoader(Loader):
    """Age = the mean of the votes (years); `stdv` is kept for the epsilon-error."""

    kind = "chalearn"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [*self.metadata(root, opts), *(root / f for f in FOLDERS.values())]

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [root / f"{f}_gt.csv" for f in FOLDERS.values()]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        out = {}
        for split, folder in FOLDERS.items():
            b = ManifestBuilder(image_root=str(root / folder))
            for _, row in read_rows(root / f"{folder}_gt.csv", ("image", "mean", "stdv")):
                mean, std = parse_float(row["mean"]), parse_float(row["stdv"])
                if not row["image"] or not math.isfinite(mean) or not 0 <= mean <= 100:
                    b.drop(drops.BAD_LABEL)
                    continue
                std = std if math.isfinite(std) and std > 0 else math.nan  # unknown: no eps
                b.add(str(root / folder / row["image"]), row["image"], {"age": mean}, std)
            out[split] = b.build()
        return out
