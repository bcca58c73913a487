"""`--plot`'s forest plot: each multi-task cell's paired gain over single-task, per task.

The standard display for paired differences: one row per (cell, task) with the mean gain
over seeds and its (1 - alpha) Student-t interval, a line at zero, one panel per task with
its own shared axis (every cell of a task on one scale), and Δm in a panel of its own.
Gains are in the paired table's units (points for accuracies, years for Age MAE), signed
so that right of zero means multi-task is better. A significant row (Holm-adjusted) is
drawn filled and coloured with its ▲/▼; the others hollow and grey. The key is a line of
text under the panels, so nothing covers a row.

Drawn on matplotlib's Agg canvas through `Figure` (no pyplot): no display needed, and the
global backend is left alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.cells import BETTER, WORSE, gain_decimals, gain_unit, shown
from mtl_sweep.report.tables import MULTI, Row

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DELTA = "Δm"
COLORS = {1: "#1a7f37", -1: "#cf222e", 0: "0.45"}  # better, worse, not significant
MARKS = {1: BETTER, -1: WORSE, 0: ""}


@dataclass(frozen=True)
class ForestRow:
    """One line of a panel, in display units."""

    label: str
    mean: float
    low: float  # NaN with one seed: no interval drawn
    high: float
    direction: int  # +1 significantly better, -1 worse, 0 neither (or no test)
    n: int


def row_label(row: Row) -> str:
    """`ResNet-18-Age_Gender_Emotion_Smile (1, 1, 1, 1), no pretraining`."""
    how = "no pretraining" if row.pretrain == "none" else f"pretrained on {row.pretrain}"
    extra = ", ".join(x for x in (row.weights_text, row.variant) if x)
    return f"{row.name}" + (f" ({extra})" if extra else "") + f", {how}"


def panels(rows: Sequence[Row]) -> list[tuple[str, list[ForestRow]]]:
    """(panel key, its lines): one panel per task any multi-task row was tested on, in
    task order, then Δm; lines in the rows' order."""
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
            out.append((task, lines))
    deltas = [
        ForestRow(row_label(r), r.delta_m.mean, r.delta_m.low, r.delta_m.high, 0, r.delta_m.n)
        for r in multi
        if r.delta_m is not None
    ]
    if deltas:
        out.append((DELTA, deltas))
    return out


def axis_label(key: str) -> str:
    """The x axis of a panel, with its unit and which side is better."""
    if key == DELTA:
        return "Δm (%), mean of the tasks' relative gains"
    metric = PRIMARY_METRIC[key]
    better = "higher" if metric.higher_is_better else "lower"
    label = metric.label.removesuffix(" (%)")
    return f"{label}: gain over single-task ({gain_unit(metric)}; + = {better} {label})"


def _decimals(key: str) -> int:
    return 2 if key == DELTA else gain_decimals(PRIMARY_METRIC[key])


def draw(rows: Sequence[Row], path: str | Path, alpha: float, title: str) -> Path:
    """Save the forest plot of `rows`' multi-task cells to `path` (any suffix matplotlib
    writes); raises ValueError when no multi-task row has a paired test."""
    from matplotlib.figure import Figure

    found = panels(rows)
    if not found:
        raise ValueError("no multi-task row has a paired test to plot")
    heights = [len(lines) + 1.2 for _, lines in found]
    widest = max(len(line.label) for _, lines in found for line in lines)
    fig = Figure(figsize=(6.0 + 0.075 * widest, 1.0 + 0.42 * sum(heights)), layout="constrained")
    axes = fig.subplots(len(found), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (key, lines) in zip(axes, found, strict=True):
        _panel(ax, key, lines)
    confidence = f"{100 * (1 - alpha):g}%"
    fig.suptitle(title, fontsize="medium")
    fig.supxlabel(
        f"Dot: mean over seeds of multi-task − single-task, paired by seed; bar: {confidence} "
        f"Student-t interval; right of 0: multi-task better. Filled {BETTER} green / "
        f"{WORSE} red: Holm-adjusted paired p < {alpha:g}; hollow grey: not significant.",
        fontsize="small",
        wrap=True,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _panel(ax: Axes, key: str, lines: list[ForestRow]) -> None:
    """One task's rows on one axis: intervals, means, zero line, the values on the right."""
    ys = list(range(len(lines)))[::-1]  # first row on top
    d = _decimals(key)
    for y, line in zip(ys, lines, strict=True):
        color = COLORS[line.direction]
        if not math.isnan(line.low):
            ax.hlines(y, line.low, line.high, color=color, linewidth=2)
        filled = line.direction != 0
        ax.plot(
            line.mean,
            y,
            "o",
            markersize=7,
            color=color,
            markerfacecolor=color if filled else "white",
            markeredgewidth=1.5,
        )
        ci = "" if math.isnan(line.low) else f" [{line.low:+.{d}f}, {line.high:+.{d}f}]"
        text = f"{line.mean:+.{d}f}{ci} n={line.n} {MARKS[line.direction]}".rstrip()
        # Values in a column right of the axes, in axes coordinates: never over a row.
        ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), va="center", fontsize="small",
                color=color if filled else "black")  # fmt: skip
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [line.label for line in lines], fontsize="small")
    ax.set_ylim(-0.7, len(lines) - 0.3)
    spans = [v for line in lines for v in (line.low, line.high, line.mean) if not math.isnan(v)]
    reach = max(abs(v) for v in [*spans, 1e-9])
    ax.set_xlim(-1.1 * reach, 1.1 * reach)  # symmetric about 0: better and worse alike
    ax.set_xlabel(axis_label(key), fontsize="small")
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
