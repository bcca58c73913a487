"""Resolve a spec source into the concrete folder and format that will be read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mtl_core.errors import UserError
from mtl_core.settings import error_path
from mtl_core.sources import (
    SOURCE_TASKS,
    SYNTHETIC_FORMAT,
    CelebASource,
    ChalearnSource,
    Fer2013Source,
    ImdbWikiSource,
    Source,
    SyntheticSource,
)
from mtl_data.loaders import get_loader

ROLES: tuple[str, ...] = ("age", "gender", "emotion", "smile", "pretrain")
# Where each format lives inside a generated synthetic folder (see synthetic/write.py).
SYNTHETIC_TWINS = {
    "chalearn": lambda root: ChalearnSource(kind="chalearn", root=str(root / "chalearn")),
    "celeba": lambda root: CelebASource(kind="celeba", root=str(root / "celeba")),
    "fer2013": lambda root: Fer2013Source(kind="fer2013", root=str(root / "fer2013")),
    "imdb_wiki": lambda root: ImdbWikiSource(kind="imdb_wiki", root=str(root / "imdb_wiki")),
}
_SOURCE = TypeAdapter(Source)


@dataclass(frozen=True)
class ResolvedSource:
    """The format actually read, its absolute root and its other settings.

    Frozen and hashable: two tasks whose sources resolve to the same folder and settings
    (gender and smile on one CelebA) compare equal and are loaded once.
    """

    kind: str
    root: str
    options: tuple[tuple[str, Any], ...] = ()  # sorted (name, value) pairs

    @property
    def opts(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    def __str__(self) -> str:
        return f"{self.kind} at {self.root}"


def parse_source(source: Source | Mapping[str, Any]) -> Source:
    """A typed source as it is; a mapping (command line, tests) validated by the schema."""
    if not isinstance(source, Mapping):
        return source
    try:
        return _SOURCE.validate_python(source)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in error_path(first)[1:]) or "kind"
        msg = first["msg"].removeprefix("Value error, ")
        raise UserError(f"bad source {source!r}: {where}: {msg}") from None


def resolve_source(
    source: Source | Mapping[str, Any], role: str, cache_dir: Path, progress: bool = True
) -> ResolvedSource:
    """Turn a source's settings into the folder and format to read for `role`.

    source: a typed source (from a TrialConfig), or its settings as a mapping, e.g.
    {"kind": "celeba", "root": "/data/celeba"}.
    role: "age", "gender", "emotion", "smile" or "pretrain".
    A synthetic source is generated on first use under cache_dir/synthetic/<key>/ and
    resolves to its twin in the role's real format (spec.SYNTHETIC_FORMAT). A real source
    must have its root and required files: otherwise DataError names the missing path.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    model = parse_source(source)
    if isinstance(model, SyntheticSource):
        from mtl_data.synthetic.write import ensure_synthetic

        folder = ensure_synthetic(model, Path(cache_dir), progress)
        model = SYNTHETIC_TWINS[SYNTHETIC_FORMAT[role]](folder)
    elif role != "pretrain" and role not in SOURCE_TASKS[model.kind]:
        carriers = ", ".join(k for k, ts in SOURCE_TASKS.items() if role in ts)
        raise UserError(f"a {model.kind} source has no {role} labels; use one of: {carriers}")
    settings = model.model_dump(mode="json")
    kind = settings.pop("kind")
    root = Path(os.path.normpath(Path(settings.pop("root")).expanduser().absolute()))
    get_loader(kind).check_exists(root, settings)
    return ResolvedSource(kind, str(root), tuple(sorted(settings.items())))
