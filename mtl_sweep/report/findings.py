"""What the report found, as data: verdicts per backbone x pretraining group, and whether
pretraining changes the multi-task gain (the interaction).

Both questions of the study, answered from the statistics the report already has:
1. *When does multi-task beat single-task?* Per multi-task cell (a multi-task row), per
   task, the verdict of its paired test after Holm's correction: better, worse, or no
   detectable difference, with the smallest gain the test detects at its n and spread;
   and Δm with its interval.
2. *Does pretraining change that?* Per multi-task cell trained both with a pretraining
   stage and without, the difference pretrained − not in Δm and in each task's gain,
   paired by seed: seed i contributes g_pre(i) − g_none(i), each side against its own
   single-task rows of the same seed. A one-sample t-test of those differences
   (`stats.paired_many`) gives the p-value, and the interaction tests join the report's
   paired tests in ONE Holm family (`analyse`), so adding them makes every p (Holm) of
   the report a little more conservative, never less.

Units: Δm and its differences in percent; a task's gain s_t (M_t − S_t) and its
differences in the metric's stored units (accuracy fractions, years), as in the paired
table. Nothing here formats text; `findings_section` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mtl_core.tasks import TASKS
from mtl_sweep.report.compare import baselines, seed_deltas, seed_gains
from mtl_sweep.report.model.base import DEFAULT_ALPHA, MULTI, SINGLE, Paired, Row
from mtl_sweep.report.model.findings import (
    DELTA_M,
    NO_DIFFERENCE,
    UNTESTED,
    VERDICT_BETTER,
    VERDICT_WORSE,
    CellFinding,
    Contrast,
    Findings,
    GroupFinding,
    Interaction,
    Verdict,
)
from mtl_sweep.report.stats import holm_adjust, min_detectable_difference, paired_many

NO_PRETRAIN = "none"


def verdict_of(test: Paired) -> str:
    """VERDICT_BETTER / VERDICT_WORSE where significant after Holm, NO_DIFFERENCE where
    tested, else UNTESTED."""
    if not test.tested:
        return UNTESTED
    return {1: VERDICT_BETTER, -1: VERDICT_WORSE}.get(test.direction, NO_DIFFERENCE)


def detectable_of(test: Paired, alpha: float) -> float:
    """The smallest true difference the test's n and spread detect with 80% power at
    `alpha` (before Holm), as `stats.min_detectable_difference`; NaN when untested."""
    return min_detectable_difference(test.n, test.diff_std, alpha) if test.tested else math.nan


def twins(multi: Sequence[Row]) -> tuple[list[tuple[Row, Row]], list[Row]]:
    """Pairs (pretrained, scratch) of multi-task rows that differ only in pretraining
    (same backbone, tasks, weighting, weights and settings), and the pretrained rows with
    no such twin or with more than one."""
    pairs, alone = [], []
    for row in multi:
        if row.pretrain == NO_PRETRAIN:
            continue
        found = [
            other
            for other in multi
            if other.pretrain == NO_PRETRAIN
            and (other.backbone, other.tasks, other.weighting, other.weights)
            == (row.backbone, row.tasks, row.weighting, row.weights)
            and all(row.config[k] == other.config[k] for k in row.config.keys() & other.config)
        ]
        if len(found) == 1:
            pairs.append((row, found[0]))
        else:
            alone.append(row)
    return pairs, alone


def _interaction_inputs(
    pre: Row, scratch: Row, singles: Sequence[Row]
) -> list[tuple[str, dict[int, float], dict[int, float]]]:
    """(what, seed -> value with pretraining, seed -> value without) per contrast."""
    pre_base, pre_why = baselines(pre, singles)
    none_base, none_why = baselines(scratch, singles)
    out = []
    if not pre_why and not none_why:
        out.append((DELTA_M, seed_deltas(pre, pre_base), seed_deltas(scratch, none_base)))
    for task in pre.tasks:
        if task in pre_base and task in none_base:
            gains = (
                seed_gains(pre, pre_base[task], task),
                seed_gains(scratch, none_base[task], task),
            )
            out.append((task, *gains))
    return out


def analyse(rows: Sequence[Row], alpha: float = DEFAULT_ALPHA) -> Findings:
    """The findings of a report's rows, after `compare.compare` has set their tests.

    Adds the interaction tests to the Holm family of the rows' paired tests and
    re-adjusts the whole family at once: each multi-task row's `paired` tests get their
    new p (Holm) and significance, and `Findings.tests` is the family's size.
    """
    multi = [r for r in rows if r.block == MULTI]
    singles = [r for r in rows if r.block == SINGLE]
    pairs, alone = twins(multi)
    inputs = [_interaction_inputs(pre, scratch, singles) for pre, scratch in pairs]
    flat = [(pre, none, 1) for contrasts in inputs for _, pre, none in contrasts]
    raw = paired_many(flat, alpha)
    # The family: every paired test of the report, then every interaction test.
    cells = [(row, task) for row in multi for task in row.paired]
    family = [row.paired[task] for row, task in cells]
    family += [t for t in raw if t is not None]
    adjusted = holm_adjust(family, alpha)
    for (row, task), test in zip(cells, adjusted[: len(cells)], strict=True):
        row.paired[task] = test
    later = iter(adjusted[len(cells) :])
    tested = [next(later) if t is not None else None for t in raw]
    interactions, k = [], 0
    for (pre, scratch), contrasts in zip(pairs, inputs, strict=True):
        made = []
        for what, _, _ in contrasts:
            test = tested[k]
            k += 1
            if test is not None:
                made.append(Contrast(what, test, verdict_of(test), detectable_of(test, alpha)))
        interactions.append(Interaction(pre, scratch, tuple(made)))
    return Findings(
        groups=tuple(_groups(multi, alpha)),
        interactions=tuple(interactions),
        unmatched=tuple(alone),
        alpha=alpha,
        tests=sum(t.tested for t in adjusted),
    )


def _groups(multi: Sequence[Row], alpha: float) -> list[GroupFinding]:
    """The cells per (backbone, pretraining), in the rows' order, no pretraining first."""
    backbones = list(dict.fromkeys(r.backbone for r in multi))
    keys = list(dict.fromkeys((r.backbone, r.pretrain) for r in multi))
    keys.sort(key=lambda k: (backbones.index(k[0]), k[1] != NO_PRETRAIN))
    out = []
    for backbone, pretrain in keys:
        cells = []
        for row in multi:
            if (row.backbone, row.pretrain) != (backbone, pretrain):
                continue
            verdicts = tuple(
                Verdict(t, verdict_of(p), p, detectable_of(p, alpha))
                for t in TASKS
                if (p := row.paired.get(t)) is not None
            )
            cells.append(CellFinding(row, row.delta_m, verdicts))
        out.append(GroupFinding(backbone, pretrain, tuple(cells)))
    return out
