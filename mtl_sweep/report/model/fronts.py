"""Trade-off fronts: each task pair's fixed weightings (`Point`), its non-dominated front
and the adaptive strategies judged against it (`FrontVerdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mtl_sweep.report.model.base import Interval, Paired

# --- trade-off fronts ----------------------------------------------------------------------

DOMINATED, FRONT, BEYOND = "dominated", "front", "beyond"  # an adaptive strategy's verdict
FIXED = "fixed"  # the hypervolume entry of the fixed-weight front


@dataclass(frozen=True)
class Point:
    """One configuration on a pair's two axes: means and intervals in stored units."""

    name: str  # the weights as text (`0.18, 1.82`), a strategy, or `single-task`
    weights: tuple[float, ...] | None  # fixed weights over the set's tasks; None otherwise
    axes: tuple[Interval, Interval]  # per task of the pair: mean, std, n and the interval
    values: tuple[dict[int, float], dict[int, float]]  # per task: seed -> value

    @property
    def means(self) -> tuple[float, float]:
        """The mean per task of the pair."""
        return (self.axes[0].mean, self.axes[1].mean)


@dataclass(frozen=True)
class FrontVerdict:
    """Where an adaptive strategy's mean point lies against the fixed-weight front."""

    point: Point
    verdict: str  # DOMINATED, FRONT or BEYOND
    # The weighting the tests compare with: the best dominating weighting (dominated) or
    # the best front point it dominates (beyond); None on the front.
    versus: Point | None = None
    # Task -> paired test; its gains are signed so that + favours the dominating side.
    tests: dict[str, Paired] = field(default_factory=dict)

    @property
    def dominated_by(self) -> tuple[float, ...] | None:
        """The weights of the best fixed weighting that dominates it, or None."""
        return self.versus.weights if self.verdict == DOMINATED and self.versus else None

    @property
    def dominates(self) -> tuple[float, ...] | None:
        """The weights of the front point it dominates (beyond), or None."""
        return self.versus.weights if self.verdict == BEYOND and self.versus else None


@dataclass(frozen=True)
class Front:
    """One task pair of one multi-task set: its fixed weightings, front and strategies."""

    backbone: str
    pretrain: str
    tasks: tuple[str, ...]  # the multi-task set the rows trained
    pair: tuple[str, str]  # the two tasks on the axes, in canonical order
    variant: str = ""  # the params that tell its rows apart from others' (Row.variant)
    seeds: tuple[int, ...] = ()  # the seeds every fixed weighting finished
    points: list[Point] = field(default_factory=list)  # the fixed weightings
    on_front: list[bool] = field(default_factory=list)  # per point: non-dominated; [] undrawn
    singles: dict[str, Point] = field(default_factory=dict)  # task -> single-task point
    strategies: list[FrontVerdict] = field(default_factory=list)  # judged by the front
    unjudged: tuple[str, ...] = ()  # adaptive strategies with no front to judge them by
    hypervolume: dict[str, float] = field(default_factory=dict)  # FIXED or strategy -> HV
    notes: list[str] = field(default_factory=list)  # why a front, verdict or HV is missing

    @property
    def drawn(self) -> bool:
        """Whether the pair has a front (enough weightings on shared seeds)."""
        return bool(self.on_front)

    @property
    def front(self) -> list[Point]:
        """The non-dominated fixed weightings (none where no front is drawn)."""
        return [p for p, on in zip(self.points, self.on_front, strict=False) if on]
