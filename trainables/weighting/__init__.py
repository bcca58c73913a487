"""Loss-weighting strategies, one file each, named in `mtl_core.weightings.WEIGHTINGS`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtl_core.weightings import WEIGHTINGS
from trainables.weighting.base import Weighting


def build_weighting(
    name: str, tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]
) -> Weighting:
    """The strategy `name` for `tasks`; `options` are its spec settings (e.g. temperature)."""
    return WEIGHTINGS.load(name)(tasks, weights, **dict(options))


__all__ = ["Weighting", "build_weighting"]
