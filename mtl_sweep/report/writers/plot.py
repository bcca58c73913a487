"""`--plot`: the document's figures as image files, one subplot per panel.

Drawn on matplotlib's Agg canvas through `Figure` (no pyplot), so it needs no display
and leaves the global backend alone. Each panel type has one drawing function here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure as MplFigure

from mtl_core.errors import UserError
from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.model import (
    BETTER,
    WORSE,
    AffinityPanel,
    Document,
    Figure,
    GainsPanel,
    Interval,
    Row,
    SensitivityPanel,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DELTA = "Δm"  # the last bar of each group
CLIP = -1.0  # sensitivity panels: the lowest objective shown


def write_plots(doc: Document, path: str | Path) -> list[Path]:
    """Save each figure that has panels: the first at `path`, the others beside it with
    their suffix (`report-affinity.png`). A required figure without panels is a UserError."""
    main = Path(path)
    out = []
    for figure in doc.figures:
        if not figure.panels:
            if figure.required:
                raise UserError(figure.required)
            continue
        target = main.with_name(f"{main.stem}{figure.suffix}{main.suffix}")
        out.append(_save(figure, target))
    return out


def _save(figure: Figure, path: Path) -> Path:
    first = figure.panels[0]
    if isinstance(first, GainsPanel):
        # Rows along x and one bar per task in each group: the legend stays at five
        # entries however many multi-task rows a sweep has.
        widest = max(len(p.rows) for p in figure.panels)
        size = (max(6.0, 1.1 * widest + 2.0), 4.2 * len(figure.panels))
        fig = MplFigure(figsize=size, layout="constrained")
        axes = fig.subplots(len(figure.panels), 1, squeeze=False)[:, 0]
    elif isinstance(first, SensitivityPanel):
        # One row per searched dimension, one column per task.
        keys = list(dict.fromkeys(p.key for p in figure.panels))
        ncols = len(figure.panels) // len(keys)
        fig = MplFigure(figsize=(4.2 * ncols, 3.6 * len(keys)), layout="constrained")
        axes = fig.subplots(len(keys), ncols, squeeze=False).ravel()
    else:
        fig = MplFigure(figsize=(5.2 * len(figure.panels), 4.6), layout="constrained")
        axes = fig.subplots(1, len(figure.panels), squeeze=False)[0]
    for ax, panel in zip(axes, figure.panels, strict=True):
        _DRAW[type(panel)](fig, ax, panel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# --- per-task gains ----------------------------------------------------------------------


def _gains(fig: MplFigure, ax: Axes, panel: GainsPanel) -> None:
    """One table's multi-task rows: a group of bars per row, one per task and Δm.

    A task's bar is its term of Δm in percent, 100 s_t (M_t - S_t) / S_t, computed seed by
    seed and averaged over the seeds (positive: multi-task helps); its error bar is the
    (1 - alpha) Student-t interval over the seeds (none with one seed). ▲/▼ above a task's
    bar: the paired test on that task is significant after Holm's correction.
    """
    rows, alpha = panel.rows, panel.alpha
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
    ax.set_title(f"{panel.title}\n{legend}", fontsize="medium")
    ax.legend(fontsize="small")


def _value(row: Row, bar: str) -> Interval | None:
    return row.delta_m if bar == DELTA else row.gains.get(bar)


def _half_width(v: Interval) -> float:
    return 0.0 if math.isnan(v.high) else (v.high - v.low) / 2


def _mark(row: Row, bar: str) -> str:
    test = row.paired.get(bar)
    return {1: BETTER, -1: WORSE}.get(test.direction, "") if test else ""


# --- affinity heatmaps -------------------------------------------------------------------


def _affinity(fig: MplFigure, ax: Axes, panel: AffinityPanel) -> None:
    """A heatmap of Z(i→j) of one grouping analysis, each cell labelled with its value."""
    g = panel.grouping
    n = len(g.tasks)
    grid = [[math.nan] * n for _ in range(n)]
    for (i, j), s in g.affinity.items():
        grid[g.tasks.index(i)][g.tasks.index(j)] = s.mean
    top = max((abs(v) for row in grid for v in row if not math.isnan(v)), default=1.0) or 1.0
    image = ax.imshow(grid, cmap="RdBu", vmin=-top, vmax=top)
    for r in range(n):
        for c in range(n):
            if not math.isnan(grid[r][c]):
                ax.text(c, r, f"{grid[r][c]:+.2g}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n), g.tasks)
    ax.set_yticks(range(n), g.tasks)
    ax.set_xlabel("onto task j")
    ax.set_ylabel("step on task i")
    ax.set_title(f"Z(i→j): {g.title}", fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)


def _sensitivity(fig: MplFigure, ax: Axes, panel: SensitivityPanel) -> None:
    """A searched dimension against the validation objective of every search run of the
    cells that train the panel's task (single-task and multi-task in one panel); hollow
    markers: samples stopped early (their objective is the last round they reached)."""
    for name, points in panel.series:
        if not points:
            continue
        xs, ys = [x for x, _, _ in points], [y for _, y, _ in points]
        (line,) = ax.plot(xs, ys, "-", alpha=0.5, label=name)
        full = [(x, y) for x, y, stopped in points if not stopped]
        stop = [(x, y) for x, y, stopped in points if stopped]
        if full:
            ax.plot(*zip(*full, strict=True), "o", color=line.get_color())
        if stop:
            ax.plot(*zip(*stop, strict=True), "o", mfc="none", color=line.get_color())
    if panel.log:
        ax.set_xscale("log")
    # A diverged sample's relative objective can be in the thousands below 0 (its MAE
    # against the trivial one): the axis stops at CLIP, where the rest is readable.
    ys = [y for _, points in panel.series for _, y, _ in points]
    if ys and min(ys) < CLIP:
        ax.set_ylim(CLIP, max(max(ys), 0.0) + 0.05)
        ax.annotate(
            f"clipped at {CLIP:g}", (0.02, 0.02), xycoords="axes fraction", fontsize="x-small"
        )
    ax.set_xlabel(panel.key)
    ax.set_ylabel(f"val objective ({panel.objective})")
    ax.set_title(f"{panel.task}: {panel.key}", fontsize="medium")
    ax.legend(fontsize="x-small")


_DRAW: dict[type, Any] = {
    GainsPanel: _gains,
    AffinityPanel: _affinity,
    SensitivityPanel: _sensitivity,
}
