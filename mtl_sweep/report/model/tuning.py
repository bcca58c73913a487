"""Tuned sweeps (docs/tuning.md): each cell's search (`TunedCell`, `SearchPoint`) and the
sweep's `Tuning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mtl_sweep.report.model.base import Stat

# --- tuned sweeps (docs/tuning.md) ----------------------------------------------------------

BUDGET_TOLERANCE = 0.10  # compared cells whose search steps differ by more are flagged
OUTER = 0.10  # a chosen value this close to a range's end (log space for loguniform) warns
DAGGER = "†"  # marks a comparison whose arms' search steps differ by more than the tolerance


@dataclass(frozen=True)
class SearchPoint:
    """One search run as the report sees it."""

    index: int  # sample index in its cell
    values: dict[str, Any]  # search key -> sampled value
    objective: float  # its best round's validation objective; the last one reached if stopped
    steps: int  # optimizer steps it ran
    stopped: bool  # stopped early by its cell's scheduler
    run_id: str


@dataclass
class TunedCell:
    """One cell's search: its samples, the winner its final runs retrain, what it spent."""

    cell: str  # the cell id (tag mtl_sweep.cell)
    name: str  # e.g. ResNet-18-Age
    backbone: str
    pretrain: str
    tasks: tuple[str, ...]
    weighting: str
    points: list[SearchPoint]
    chosen: SearchPoint | None  # the winner its final runs name (mtl_sweep.tuned_from)
    steps: int  # optimizer steps over its search runs, stopped ones for what they ran
    edges: list[str] = field(default_factory=list)  # searched keys chosen in an outer 10%
    flagged: list[str] = field(default_factory=list)  # comparisons whose steps differ > 10%

    @property
    def full(self) -> list[SearchPoint]:
        """The samples that ran the full budget (the only ones that can win)."""
        return [p for p in self.points if not p.stopped and math.isfinite(p.objective)]

    @property
    def spread(self) -> Stat:
        """Mean and std of the full-budget samples' objectives."""
        return Stat.of(p.objective for p in self.full)


@dataclass
class Tuning:
    """How a tuned sweep's tables were tuned: the protocol and every cell's search."""

    space: dict[str, dict[str, list[Any]]]  # search key -> {distribution: args}
    samples: int
    algorithm: str
    scheduler: str
    objective: str
    cells: list[TunedCell]
    comparisons: list[tuple[str, list[str], float]] = field(default_factory=list)
    # (multi-task cell, its single-task cells, max/min of their search steps)
