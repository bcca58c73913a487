"""`--plot`: each task's multi-task gain over single-task, and Δm, with their intervals.

Drawn on matplotlib's Agg canvas through `Figure` (no pyplot), so it needs no display
and leaves the global backend alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_core.errors import UserError
from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.cells import BETTER, WORSE
from mtl_sweep.report.stats import Interval
from mtl_sweep.report.tables import MULTI, Report, Row

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DELTA = "Δm"  # the last bar of each group


def plot_gains(report: Report, path: str | Path) -> Path:
    """Save a bar chart of per-task gains to `path` (PNG, or any suffix matplotlib knows).

    One panel per table with multi-task rows, a group of bars per row: one bar per task,
    then Δm. A task's bar is its term of Δm in percent, 100 s_t (M_t - S_t) / S_t, computed
    seed by seed and averaged over the seeds (positive: multi-task helps); its error bar is
    the (1 - alpha) Student-t interval over the seeds (none with one seed). ▲/▼ above a
    task's bar: the paired test on that task is significant after Holm's correction.
    """
    from matplotlib.figure import Figure

    panels = [
        (table.title, [r for r in table.rows if r.block == MULTI and r.gains])
        for table in report.tables
    ]
    panels = [(title, rows) for title, rows in panels if rows]
    if not panels:
        raise UserError(
            "--plot: no multi-task row has finished single-task rows with the same seeds "
            "to compare with"
        )
    # Rows along x and one bar per task in each group: the legend stays at five entries
    # however many multi-task rows a sweep has.
    widest = max(len(rows) for _, rows in panels)
    fig = Figure(figsize=(max(6.0, 1.1 * widest + 2.0), 4.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, rows) in zip(axes, panels, strict=True):
        _panel(ax, title, rows, report.alpha)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _panel(ax: Axes, title: str, rows: list[Row], alpha: float) -> None:
    """One table's multi-task rows: a group of bars per row, one per task and Δm."""
    bars = [t for t in TASKS if any(t in r.gains for r in rows)] + [DELTA]
    width = 0.8 / len(bars)
    for j, bar in enumerate(bars):
        offset = (j - (len(bars) - 1) / 2) * width
        drawn = [
            (i + offset, r, v) for i, r in enumerate(rows) if (v := _value(r, bar)) is not None
        ]
        xs, means = [x for x, _, _ in drawn], [v.mean for _, _, v in drawn]
        errs = [_half_width(v) for _, _, v in drawn]
        label = DELTA if bar == DELTA else PRIMARY_METRIC[bar].label.split(" (")[0]
        style = {"color": "0.35", "hatch": "//"} if bar == DELTA else {}
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=label, **style)
        for (x, row, v), err in zip(drawn, errs, strict=True):
            if mark := _mark(row, bar):  # past the end of the error bar, away from 0
                up = v.mean >= 0
                y = v.mean + err if up else v.mean - err
                ax.annotate(mark, (x, y), ha="center", va="bottom" if up else "top")
    ax.axhline(0.0, color="black", linewidth=0.8)
    names = [f"{r.name}\n{r.weights_text} (n={r.delta_m.n if r.delta_m else 0})" for r in rows]
    ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize="small")
    ax.margins(y=0.15)  # room for the markers past the error bars
    ax.set_ylabel("gain over single-task (%)")
    legend = (
        f"mean over seeds, {100 * (1 - alpha):g}% CI; {BETTER}/{WORSE}: Holm-adjusted p < {alpha:g}"
    )
    ax.set_title(f"{title}\n{legend}", fontsize="medium")
    ax.legend(fontsize="small")


def _value(row: Row, bar: str) -> Interval | None:
    return row.delta_m if bar == DELTA else row.gains.get(bar)


def _half_width(v: Interval) -> float:
    return 0.0 if math.isnan(v.high) else (v.high - v.low) / 2


def _mark(row: Row, bar: str) -> str:
    test = row.paired.get(bar)
    return {1: BETTER, -1: WORSE}.get(test.direction, "") if test else ""
