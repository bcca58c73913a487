"""Loss-weighting strategies, registered by name. A new strategy is a new file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainables.registry import Registry

STRATEGIES: Registry[type] = Registry("weighting strategy")

# Registration happens on import; the imports sit below the registry they fill.
from trainables.weighting import dwa, fixed, gradnorm, uncertainty  # noqa: E402, F401
from trainables.weighting.base import Weighting  # noqa: E402


def build_weighting(
    name: str, tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]
) -> Weighting:
    """The strategy `name` for `tasks`; `options` are its spec settings (e.g. temperature)."""
    return STRATEGIES.get(name)(tasks, weights, **dict(options))


__all__ = ["STRATEGIES", "Weighting", "build_weighting"]
