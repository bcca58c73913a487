"""The loader interface and its registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl_sweep.errors import DataError
from trainables.data.manifest import Manifest
from trainables.registry import Registry


class Loader:
    """Reads one dataset format. Subclasses set `kind` and implement the three methods.

    `opts` are the source's settings other than kind and root (see mtl_sweep.spec).
    """

    kind: str = ""

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


LOADERS: Registry[Loader] = Registry("data source kind")


def register(cls: type[Loader]) -> type[Loader]:
    """Class decorator: register an instance of a Loader subclass under its `kind`."""
    LOADERS.register(cls.kind)(cls())
    return cls


def get_loader(kind: str) -> Loader:
    """The loader for `kind`; KeyError listing the known kinds otherwise."""
    return LOADERS.get(kind)


def list_loaders() -> list[str]:
    """Every registered kind, sorted."""
    return LOADERS.names()
