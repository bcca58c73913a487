"""`--plot`: each task's multi-task gain over single-task, with seed error bars.

Drawn on matplotlib's Agg canvas through `Figure` (no pyplot), so it needs no display
and leaves the global backend alone.
"""

from __future__ import annotations

from pathlib import Path

from mtl_core.errors import UserError
from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.tables import MULTI, Report


def plot_gains(report: Report, path: str | Path) -> Path:
    """Save a bar chart of per-task gains to `path` (PNG, or any suffix matplotlib knows).

    One panel per table with multi-task rows, a group of bars per row, one bar per task.
    A bar is the task's term of Δm in percent,
    100 s_t (M_t - S_t) / S_t on the seed means (positive: multi-task helps); its error bar
    is the std over the shared seeds of the same gain computed seed by seed.
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
    # Rows along x and one bar per task in each group: the legend stays at four entries
    # however many multi-task rows a sweep has.
    widest = max(len(rows) for _, rows in panels)
    fig = Figure(figsize=(max(6.0, 0.9 * widest + 2.0), 4.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, rows) in zip(axes, panels, strict=True):
        tasks = [t for t in TASKS if any(t in r.gains for r in rows)]
        width = 0.8 / len(tasks)
        for j, task in enumerate(tasks):
            offset = (j - (len(tasks) - 1) / 2) * width
            xs = [i + offset for i, r in enumerate(rows) if task in r.gains]
            gains = [r.gains[task] for r in rows if task in r.gains]
            errs = [g.std if g.n > 1 else 0.0 for g in gains]
            label = PRIMARY_METRIC[task].label
            ax.bar(xs, [g.mean for g in gains], width, yerr=errs, capsize=2, label=label)
        ax.axhline(0.0, color="black", linewidth=0.8)
        names = [f"{r.name}\n{r.weights_text} (n={r.delta_m.n if r.delta_m else 0})" for r in rows]
        ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize="small")
        ax.set_ylabel("gain over single-task (%)")
        ax.set_title(title)
        ax.legend(fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
