"""The `mtl-sweep report` click command. Heavy imports wait until it runs."""

from __future__ import annotations

from pathlib import Path

import click

from mtl_core.errors import UserError
from mtl_core.files import writable_dir
from mtl_sweep.report.model.base import DEFAULT_ALPHA, DEFAULT_GROUP_BY, FORMATS, GROUP_KEYS

# --out's suffix picks the format when --format is not given.
SUFFIX_FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".tex": "latex",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
}


@click.command()
@click.option(
    "--experiment",
    "-e",
    default=None,
    help="MLflow experiment (default: that of the most recent sweep in the store).",
)
@click.option(
    "--sweep",
    "-s",
    default=None,
    help="Sweep name (default: the most recent sweep, in the experiment if given).",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default: from --out's suffix, else markdown).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.png",
    help="Also draw a forest plot: each multi-task cell's paired gain over single-task per "
    "task, with its interval (and, where runs logged affinities, the affinity matrix to "
    "FILE-affinity.png).",
)
@click.option(
    "--group-by",
    default=",".join(DEFAULT_GROUP_BY),
    show_default=True,
    metavar="KEYS",
    help=f"Comma-separated keys to split tables on ({', '.join(GROUP_KEYS)}), or none.",
)
@click.option(
    "--alpha",
    type=float,
    default=DEFAULT_ALPHA,
    show_default=True,
    help="Significance level: ▲/▼ where the Holm-adjusted paired p < alpha; "
    "intervals are (1 - alpha) confidence intervals.",
)
@click.option(
    "--groupings/--no-groupings",
    default=None,
    help="Task-grouping section (Standley et al. 2020; TAG affinities where logged) for every "
    "table, or for none (default: tables with subsets other than single tasks and all).",
)
def report(
    experiment: str | None,
    sweep: str | None,
    tracking_uri: str | None,
    fmt: str | None,
    out: Path | None,
    plot_path: Path | None,
    group_by: str,
    alpha: float,
    groupings: bool | None,
) -> None:
    """Rebuild the single-task vs multi-task tables of a sweep from MLflow alone."""
    from mtl_sweep.report import build_report
    from mtl_sweep.report.render import render
    from mtl_sweep.store.uri import resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(tracking_uri, None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # Where the output goes is checked first: a bad path fails before the work, not after.
    if plot_path is not None:
        plot_path = _plot_target(plot_path)
    for path, what in ((out, "-o"), (plot_path, "--plot")):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{what} {path} is a folder; name a file in it")
        writable_dir(path.absolute().parent, f"{what}'s folder")
    keys = [k.strip() for k in group_by.split(",")]
    built = build_report(uri, experiment, sweep, keys, alpha, groupings)
    fmt = fmt or (SUFFIX_FORMATS.get(out.suffix.lower(), "markdown") if out else "markdown")
    text = render(built, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    if plot_path is not None:
        from mtl_sweep.report.document import build_document
        from mtl_sweep.report.writers.plot import write_plots

        for written in write_plots(build_document(built), plot_path):
            click.echo(f"wrote {written}", err=True)


def _plot_target(path: Path) -> Path:
    """The plot's file: PNG when it has no suffix; a suffix matplotlib cannot write fails."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not path.suffix:
        return path.with_suffix(".png")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        known = ", ".join(sorted(formats))
        raise UserError(f"--plot {path}: {path.suffix} is not an image format; use one of {known}")
    return path
