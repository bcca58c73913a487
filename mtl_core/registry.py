"""Small registries that fail loudly, after torchvision's models/_api.py and timm's
`"module:fn"` entry points.

An entry names its object lazily as `"package.module:attr"`, so a registry can be listed,
validated against and enumerated by tests without importing torch; the object is imported
on first `load`. A duplicate name raises; an unknown name raises and lists the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

M = TypeVar("M")


class UnknownName(KeyError):
    """An unknown registry name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[M]):
    """One registered name: where its object lives, plus metadata known without importing it."""

    name: str
    target: str  # "package.module:attr"
    meta: M

    def load(self) -> Any:
        """Import and return the object."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


class Registry(Generic[M]):
    """Names to lazily imported objects (see module docstring)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry[M]] = {}

    def add(self, name: str, target: str, meta: M = None) -> Entry[M]:  # type: ignore[assignment]
        """Register `target` ("module:attr") as `name`; a duplicate name raises ValueError."""
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        if ":" not in target:
            raise ValueError(f"{self.what} {name!r}: target {target!r} is not 'module:attr'")
        entry = Entry(name, target, meta)
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry[M]:
        """The entry registered as `name`; UnknownName listing the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.what} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def load(self, name: str) -> Any:
        """The object registered as `name`, imported on first use."""
        return self.get(name).load()

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[M]]:
        return iter(self._entries.values())
