"""Findings: the two questions answered, per multi-task cell (`CellFinding`, `Verdict`) and
for the pretraining interaction (`Interaction`, `Contrast`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl_sweep.report.model.base import DEFAULT_ALPHA, Interval, Paired, Row

# --- findings: the two questions, answered ---------------------------------------------------

# A verdict: multi-task against single-task, or pretrained against not (report/findings.py).
VERDICT_BETTER, VERDICT_WORSE = "better", "worse"  # significant after Holm, that direction
NO_DIFFERENCE = "no detectable difference"  # tested, not significant
UNTESTED = "not testable"  # one seed, or no spread
DELTA_M = "Δm"  # a contrast over all of a cell's tasks


@dataclass(frozen=True)
class Verdict:
    """One task of one multi-task cell against single-task."""

    task: str
    verdict: str  # VERDICT_BETTER, VERDICT_WORSE, NO_DIFFERENCE or UNTESTED
    test: Paired  # its paired test, Holm-adjusted over the report's family
    detectable: float  # smallest gain detected with 80% power (stored units); NaN if untested


@dataclass(frozen=True)
class CellFinding:
    """One multi-task row's findings."""

    row: Row
    delta_m: Interval | None  # Δm (%) with its interval; None when it could not be made
    verdicts: tuple[Verdict, ...]  # in task order, for the tasks with a baseline


@dataclass(frozen=True)
class GroupFinding:
    """The multi-task cells of one backbone x pretraining setting."""

    backbone: str
    pretrain: str
    cells: tuple[CellFinding, ...]


@dataclass(frozen=True)
class Contrast:
    """Pretrained − not, paired by seed, for Δm or one task's gain.

    `test.mtl_mean` is the mean with pretraining and `test.stl_mean` without; `diff_*`
    and the interval are of the difference (positive: pretraining raises the gain).
    """

    what: str  # DELTA_M or a task
    test: Paired
    verdict: str  # VERDICT_BETTER (pretraining raises it), VERDICT_WORSE, NO_DIFFERENCE, UNTESTED
    detectable: float  # smallest difference detected with 80% power; NaN if untested


@dataclass(frozen=True)
class Interaction:
    """Whether pretraining changes one multi-task cell's gain over single-task."""

    pretrained: Row  # the cell trained after the stage
    scratch: Row  # the same cell with no pretraining
    contrasts: tuple[Contrast, ...]  # Δm first, then each task in task order

    @property
    def delta(self) -> Contrast | None:
        """The Δm contrast, if both sides have Δm on a shared seed."""
        return next((c for c in self.contrasts if c.what == DELTA_M), None)


@dataclass(frozen=True)
class Findings:
    """Everything the findings section shows."""

    groups: tuple[GroupFinding, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    unmatched: tuple[Row, ...] = ()  # pretrained multi-task cells with no unpretrained twin
    alpha: float = DEFAULT_ALPHA
    tests: int = 0  # the size of the Holm family: the paired and the interaction tests
