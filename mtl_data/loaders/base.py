"""The loader interface and its registry."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mtl_core.errors import DataError
from mtl_core.sources import SOURCES
from mtl_data.manifest import Manifest


class Loader:
    """Reads one dataset format. Subclasses set `kind` and implement the three methods.

    `opts` are the source's settings other than kind and root (see mtl_sweep.spec.schema).
    """

    kind: str = ""
    version: int = 1  # bump when `read` changes what it yields, so old caches are rebuilt

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        """Files and folders that must exist before anything is read."""
        raise NotImplementedError

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        """The label files; their contents (with the options) key the decoded cache."""
        raise NotImplementedError

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        """Every split ("train", "val", "test") as a Manifest, with its drops counted."""
        raise NotImplementedError

    def check_exists(self, root: Path, opts: Mapping[str, Any]) -> None:
        """Raise DataError naming the first required path that is missing, or the first
        label file that is not a regular file."""
        if not root.is_dir():
            raise DataError(f"{self.kind} root {root} does not exist or is not a folder")
        for path in self.required(root, opts):
            if not path.exists():
                raise DataError(f"{self.kind} source is missing {path}")
        for path in self.metadata(root, opts):
            if not path.is_file():  # a FIFO would block the reader forever
                raise DataError(f"{self.kind} source: {path} is not a regular file")


@cache
def get_loader(kind: str) -> Loader:
    """The loader for `kind` (from `mtl_core.sources.SOURCES`); UnknownName otherwise."""
    if kind == "synthetic":
        raise ValueError("synthetic data is read through the loaders of the formats it writes")
    return SOURCES.load(kind)()


def list_loaders() -> list[str]:
    """Every kind that has a loader (all but synthetic)."""
    return [name for name in SOURCES.names() if name != "synthetic"]
