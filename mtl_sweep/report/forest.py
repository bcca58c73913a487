"""`--plot`'s forest plot as data: each multi-task cell's paired gain over single-task.

The standard display for paired differences: one row per (cell, task) with the mean gain
over seeds and its (1 - alpha) Student-t interval, one panel per task with its own shared
axis (every cell of a task on one scale), and Δm in a panel of its own. Gains are in the
paired table's units (points for accuracies, years for Age MAE), signed so that right of
zero means multi-task is better; `direction` marks the Holm-significant rows.
writers/plot.py draws the panels.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.cells import DELTA_DECIMALS, gain_decimals, gain_unit, shown
from mtl_sweep.report.model.base import MULTI, Row
from mtl_sweep.report.model.document import ForestPanel, ForestRow
from mtl_sweep.report.model.findings import DELTA_M


def row_label(row: Row) -> str:
    """`ResNet-18-Age_Gender_Emotion_Smile (1, 1, 1, 1), no pretraining`."""
    how = "no pretraining" if row.pretrain == "none" else f"pretrained on {row.pretrain}"
    extra = ", ".join(x for x in (row.weights_text, row.variant) if x)
    return f"{row.name}" + (f" ({extra})" if extra else "") + f", {how}"


def forest_panels(rows: Sequence[Row], alpha: float) -> list[ForestPanel]:
    """One panel per task any multi-task row was tested on, in task order, then Δm; in
    each, a line per multi-task row in the rows' order."""
    multi = [r for r in rows if r.block == MULTI]
    out = []
    for task in TASKS:
        metric = PRIMARY_METRIC[task]
        lines = [
            ForestRow(
                row_label(r),
                shown(t.diff_mean, metric),
                shown(t.ci_low, metric),
                shown(t.ci_high, metric),
                t.direction,
                t.n,
            )
            for r in multi
            if (t := r.paired.get(task)) is not None
        ]
        if lines:
            out.append(ForestPanel(axis_label(task), lines, gain_decimals(metric), alpha))
    deltas = [
        ForestRow(row_label(r), r.delta_m.mean, r.delta_m.low, r.delta_m.high, 0, r.delta_m.n)
        for r in multi
        if r.delta_m is not None
    ]
    if deltas:
        out.append(ForestPanel(axis_label(DELTA_M), deltas, DELTA_DECIMALS, alpha))
    return out


def axis_label(key: str) -> str:
    """The x axis of a task's panel (or Δm's), with its unit and which side is better."""
    if key == DELTA_M:
        return "Δm (%), mean of the tasks' relative gains"
    metric = PRIMARY_METRIC[key]
    better = "higher" if metric.higher_is_better else "lower"
    label = metric.label.removesuffix(" (%)")
    return f"{label}: gain over single-task ({gain_unit(metric)}; + = {better} {label})"
