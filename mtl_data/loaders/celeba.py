"""CelebA: list_attr_celeba.txt and list_eval_partition.txt plus the aligned images.

Attributes are looked up by name in the header line, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mtl_data.drops as drops
from mtl_core.errors import DataError
from mtl_core.sources import SPLITS
from mtl_data.loaders.base import Loader
from mtl_data.loaders.tabular import read_lines
from mtl_data.manifest import Manifest, ManifestBuilder

ATTRIBUTES = {"gender": "Male", "smile": "Smiling"}  # task -> CelebA attribute name
PARTITION = {"0": "train", "1": "val", "2": "test"}
PM1 = {"1": 1.0, "-1": 0.0}  # CelebA's +-1 -> 1 / 0


class CelebALoader(Loader):
    """Gender (Male: 1 male, 0 female) and smile (Smiling), with the official partition."""

    kind = "celeba"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [*self.metadata(root, opts), root / opts.get("images", "img_align_celeba")]

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [root / "list_attr_celeba.txt", root / "list_eval_partition.txt"]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        attr_path, part_path = self.metadata(root, opts)
        partition: dict[str, str] = {}
        for line in read_lines(part_path):
            parts = line.split()
            if len(parts) == 2:
                partition[parts[0]] = parts[1]
        lines = read_lines(attr_path)
        if len(lines) < 2:
            raise DataError(f"{attr_path}: expected a count line and a header line")
        header = lines[1].split()
        where = {}
        for task, name in ATTRIBUTES.items():
            if name not in header:
                raise DataError(f"{attr_path}: no attribute {name!r} in the header line")
            where[task] = header.index(name) + 1  # + 1: the image name comes first
        images = root / opts.get("images", "img_align_celeba")
        builders = {s: ManifestBuilder(image_root=str(images)) for s in SPLITS}
        for line in lines[2:]:
            parts = line.split()  # values are separated by a variable number of spaces
            if not parts:
                continue
            split = PARTITION.get(partition.get(parts[0], ""))
            if split is None:
                builders["train"].drop(drops.BAD_SPLIT)  # not in the partition file
                continue
            b = builders[split]
            values = [PM1.get(parts[i]) if i < len(parts) else None for i in where.values()]
            if len(parts) != len(header) + 1 or any(v is None for v in values):
                b.drop(drops.BAD_LABEL)
                continue
            labels = dict(zip(where, values, strict=True))
            b.add(str(images / parts[0]), parts[0], labels)
        return {s: b.build() for s, b in builders.items()}
