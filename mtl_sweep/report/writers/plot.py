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
from mtl_sweep.report.model import (
    BETTER,
    WORSE,
    AffinityPanel,
    Document,
    Figure,
    ForestPanel,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


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
    if isinstance(first, ForestPanel):
        # One panel per task, stacked, each as tall as its rows; labels left, values right.
        heights = [len(p.rows) + 1.3 for p in figure.panels]
        widest = max(len(r.label) for p in figure.panels for r in p.rows)
        size = (6.5 + 0.075 * widest, 1.2 + 0.42 * sum(heights))
        fig = MplFigure(figsize=size, layout="constrained")
        axes = fig.subplots(len(figure.panels), 1, squeeze=False, height_ratios=heights)[:, 0]
        fig.supxlabel(_forest_key(first.alpha), fontsize="small", wrap=True)
    else:
        fig = MplFigure(figsize=(5.2 * len(figure.panels), 4.6), layout="constrained")
        axes = fig.subplots(1, len(figure.panels), squeeze=False)[0]
    for ax, panel in zip(axes, figure.panels, strict=True):
        _DRAW[type(panel)](fig, ax, panel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# --- the forest plot of paired gains -----------------------------------------------------

COLORS = {1: "#1a7f37", -1: "#cf222e", 0: "0.45"}  # better, worse, not significant


def _forest_key(alpha: float) -> str:
    """The key, as a line under the panels: a legend box could cover a row."""
    return (
        "Dot: mean over seeds of multi-task − single-task, paired by seed; bar: "
        f"{100 * (1 - alpha):g}% Student-t interval; right of 0: multi-task better. Filled "
        f"{BETTER} green / {WORSE} red: Holm-adjusted paired p < {alpha:g}; hollow grey: not "
        "significant (Δm has no test of its own)."
    )


def _forest(fig: MplFigure, ax: Axes, panel: ForestPanel) -> None:
    """One task's rows on one axis, symmetric about 0: each row's interval and mean, and
    its values in a column right of the axes (never over a row)."""
    ys = list(range(len(panel.rows)))[::-1]  # first row on top
    d = panel.decimals
    for y, row in zip(ys, panel.rows, strict=True):
        color, filled = COLORS[row.direction], row.direction != 0
        if not math.isnan(row.low):
            ax.hlines(y, row.low, row.high, color=color, linewidth=2)
        face = color if filled else "white"
        ax.plot(row.mean, y, "o", markersize=7, color=color, markerfacecolor=face, mew=1.5)
        ci = "" if math.isnan(row.low) else f" [{row.low:+.{d}f}, {row.high:+.{d}f}]"
        mark = {1: BETTER, -1: WORSE}.get(row.direction, "")
        text = f"{row.mean:+.{d}f}{ci} n={row.n} {mark}".rstrip()
        ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), va="center",
                fontsize="small", color=color if filled else "black")  # fmt: skip
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [row.label for row in panel.rows], fontsize="small")
    ax.set_ylim(-0.7, len(panel.rows) - 0.3)
    ends = [v for r in panel.rows for v in (r.low, r.high, r.mean) if not math.isnan(v)]
    reach = max(abs(v) for v in [*ends, 1e-9])
    ax.set_xlim(-1.1 * reach, 1.1 * reach)  # better and worse on equal footing
    ax.set_xlabel(panel.axis, fontsize="small")
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)


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


_DRAW: dict[type, Any] = {ForestPanel: _forest, AffinityPanel: _affinity}
