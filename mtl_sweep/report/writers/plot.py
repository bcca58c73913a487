"""`--plot`: the document's figures as image files, one subplot per panel.

Drawn on matplotlib's Agg canvas through `Figure` (no pyplot), so it needs no display
and leaves the global backend alone. Each panel type has one drawing function here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import NullFormatter

from mtl_core.errors import UserError
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.model.base import BETTER, WORSE
from mtl_sweep.report.model.document import (
    AffinityPanel,
    Document,
    Figure,
    ForestPanel,
    FrontPanel,
    SensitivityPanel,
)
from mtl_sweep.report.model.fronts import Point

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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
    if isinstance(first, ForestPanel):
        # One panel per task, stacked, each as tall as its rows; labels left, values right.
        heights = [len(p.rows) + 1.3 for p in figure.panels]
        widest = max(len(r.label) for p in figure.panels for r in p.rows)
        size = (6.5 + 0.075 * widest, 1.2 + 0.42 * sum(heights))
        fig = MplFigure(figsize=size, layout="constrained")
        axes = fig.subplots(len(figure.panels), 1, squeeze=False, height_ratios=heights)[:, 0]
        fig.supxlabel(_forest_key(first.alpha), fontsize="small", wrap=True)
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


# --- trade-off fronts ----------------------------------------------------------------------

STRATEGY_MARKERS = ("s", "^", "D", "v", "P", "X")  # one per adaptive strategy, in order


def _front(fig: MplFigure, ax: Axes, panel: FrontPanel) -> None:
    """One task pair's front: every fixed weighting at its means over seeds with its
    (1 - alpha) interval per axis as a cross, the front as a line through the non-dominated
    weightings, each adaptive strategy as its own marker (labelled with its verdict) and
    the single-task point (each task trained alone). An axis where lower is better (MAE)
    is reversed, so better is always up and to the right."""
    # Over 60 lines on purpose: one panel drawn in layer order (crosses, front line,
    # strategies, single-task star, labels), each layer a few matplotlib calls.
    front, alpha = panel.front, panel.alpha
    metrics = [PRIMARY_METRIC[t] for t in front.pair]
    scale = [100.0 if m.percent else 1.0 for m in metrics]

    def at(p: Point) -> tuple[list[float], list[float], list[float], list[float]]:
        x, y = (a.mean * s for a, s in zip(p.axes, scale, strict=True))
        # Half the interval (none with one seed): the cross's arms.
        ex, ey = (
            0.0 if math.isnan(a.high) else (a.high - a.low) / 2 * s
            for a, s in zip(p.axes, scale, strict=True)
        )
        return [x], [y], [ex], [ey]

    labelled: set[str] = set()
    for p, on in zip(front.points, front.on_front, strict=True):
        x, y, ex, ey = at(p)
        text = "fixed weighting (on the front)" if on else "fixed weighting (dominated)"
        label = None if text in labelled else text  # one legend entry per kind
        labelled.add(text)
        ax.errorbar(x, y, ey, ex, fmt="o", color="C0" if on else "0.6", capsize=2, label=label)
        ax.annotate(p.name, (x[0], y[0]), xytext=(3, 3), textcoords="offset points", fontsize=6)
    line = sorted((p.axes[0].mean * scale[0], p.axes[1].mean * scale[1]) for p in front.front)
    # Over the interval crosses (zorder), which would hide it with wide intervals.
    ax.plot(
        [x for x, _ in line],
        [y for _, y in line],
        "-",
        color="C0",
        linewidth=2.2,
        zorder=4,
        label="fixed-weight front",
    )
    for k, v in enumerate(front.strategies):
        x, y, ex, ey = at(v.point)
        marker = STRATEGY_MARKERS[k % len(STRATEGY_MARKERS)]
        label = f"{v.point.name}: {v.verdict}"
        ax.errorbar(
            x, y, ey, ex, fmt=marker, color=f"C{k + 1}", ms=8, capsize=2, label=label, zorder=5
        )
    if len(front.singles) == 2:
        sx = front.singles[front.pair[0]].axes[0].mean * scale[0]
        sy = front.singles[front.pair[1]].axes[1].mean * scale[1]
        ax.plot([sx], [sy], "*", color="black", ms=14, zorder=6, label="single-task (each alone)")
    for m, flip, set_label in (
        (metrics[0], ax.invert_xaxis, ax.set_xlabel),
        (metrics[1], ax.invert_yaxis, ax.set_ylabel),
    ):
        if not m.higher_is_better:
            flip()
        set_label(m.label + ("" if m.higher_is_better else ", axis reversed"))
    ax.set_title(
        f"{panel.title}\nmeans over seeds, {100 * (1 - alpha):g}% CI; better: up and right",
        fontsize="small",
    )
    # Below the axes: inside, it would hide points wherever it went.
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)


# --- sensitivity curves (tuned sweeps) ---------------------------------------------------


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
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels of a range's two decades only
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
    ForestPanel: _forest,
    AffinityPanel: _affinity,
    SensitivityPanel: _sensitivity,
    FrontPanel: _front,
}
