"""GENKI-4K: labels.txt ("smile yaw pitch roll" per line) plus files/fileNNNN.jpg.

Line N (1-based) belongs to files/fileNNNN.jpg. There is no official split: a seeded
permutation assigns test, then val, then train (see manifest.seeded_split).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mtl_data.drops as drops
from mtl_core.sources import SPLITS
from mtl_data.loaders.base import Loader
from mtl_data.loaders.tabular import read_lines
from mtl_data.manifest import Manifest, ManifestBuilder, seeded_split


class GenkiLoader(Loader):
    """Smile (1 / 0) only; the face fills the image, so no box."""

    kind = "genki"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [*self.metadata(root, opts), root / "files"]

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [root / "labels.txt"]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        lines = read_lines(root / "labels.txt")
        split = seeded_split(
            len(lines),
            opts.get("val_fraction", 0.1),
            opts.get("test_fraction", 0.2),
            opts.get("split_seed", 0),
        )
        builders = {s: ManifestBuilder(image_root=str(root / "files")) for s in SPLITS}
        for i, line in enumerate(lines):
            b = builders[split[i]]
            parts = line.split()
            if not parts or parts[0] not in ("0", "1"):
                b.drop(drops.BAD_LABEL)
                continue
            name = f"files/file{i + 1:04d}.jpg"
            b.add(str(root / name), name, {"smile": float(parts[0])})
        return {s: b.build() for s, b in builders.items()}
