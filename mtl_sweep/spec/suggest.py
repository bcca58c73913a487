""" "Did you mean": the keys a spec model accepts at a path, and the closest to a misspelt one.

Walks the pydantic models' field annotations along a raw error location, the way
pydantic itself descended: a list index steps into the item type, a mapping key into
the value type, and a tagged source's kind (pydantic puts it in the location) picks that
branch of the union.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

MAX_LISTED = 12  # list the known keys when there is no close match and this few of them


def _branches(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated and Optional/Union unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _branches(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [b for arg in get_args(annotation) for b in _branches(arg)]
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _step(t: Any, part: int | str) -> list[Any]:
    """The types below `t` at one location part."""
    if _is_model(t):
        if isinstance(part, str) and part in t.model_fields:
            return _branches(t.model_fields[part].annotation)
        kind = t.model_fields.get("kind")
        tags = get_args(kind.annotation) if kind is not None else ()
        return [t] if part in tags else []  # a tagged union's branch: kind: Literal[...]
    origin, args = get_origin(t), get_args(t)
    if origin in (list, tuple) and args and isinstance(part, int):
        return _branches(args[0])
    if origin is dict and len(args) == 2 and isinstance(part, str):
        return _branches(args[1])
    return []


def known_keys(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the model(s) at `loc` (a raw pydantic location below `root`) accept."""
    found: list[Any] = [root]
    for part in loc:
        found = [b for t in found for b in _step(t, part)]
    keys = {k for t in found if _is_model(t) for k in t.model_fields}
    return sorted(keys)


def unknown_key_message(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    """`unknown key 'trian'; did you mean 'train'?`, else the known keys where few, for
    the unknown key at the end of `loc` (a raw pydantic location below `root`)."""
    if not loc:
        return "unknown key"
    key = str(loc[-1])
    known = known_keys(root, loc[:-1])
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    if known and len(known) <= MAX_LISTED:
        return f"unknown key {key!r}; known: {', '.join(known)}"
    return f"unknown key {key!r}"
