"""What the readers of runs_read.py hand back: one run's data, and what a caller wants."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RunData:
    """One run as the report reads it: what `mlflow.entities.Run` holds, flattened."""

    run_id: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Wanted:
    """Which tags, params and metrics a caller reads (None: all of them)."""

    tags: tuple[str, ...] | None = None
    param_prefixes: tuple[str, ...] | None = None
    metric_prefixes: tuple[str, ...] | None = None


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector paused: a read builds millions of short-lived objects
    (tuples per row; ORM objects on the client path) that trigger repeated full
    collections, and none of them form cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
