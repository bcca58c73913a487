"""`mtl-sweep report`: single-task vs multi-task comparison tables rebuilt from MLflow.

The layers, bottom up:
- `model`: the plain data every module shares (the analysis: Report, Table, Row and their
  statistics; the document: Section, TextTable, Cell, Figure) and the constants;
- the analysis: `query` reads one sweep's runs into a pandas frame through the run
  contract, `tables` aggregates them (mean ± std over seeds) and `layout` splits them into
  tables, `compare` pairs multi-task rows with single-task rows by seed (Δm, paired tests,
  Holm) using the pure statistics of `stats`, `budgets` states each table's budget, and
  `grouping_analysis` (with the selection rules of `groupings`) picks task groupings;
- the document: `document` lays a Report out as sections (`main_section`,
  `grouping_section`), with text from `cells` and `captions`;
- the writers: one per format under `writers/`, with each format's escaping in `markup`;
  `render` picks the writer.

Importing this package is cheap: mlflow, pandas and matplotlib load on first use, so the
two entry points below import their stages when called.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtl_sweep.report.model.base import DEFAULT_ALPHA, DEFAULT_GROUP_BY
from mtl_sweep.report.model.report import Report


def build_report(
    uri: str,
    experiment: str | None = None,
    sweep: str | None = None,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    alpha: float = DEFAULT_ALPHA,
    groupings: bool | None = None,
) -> Report:
    """Read a sweep's runs from the MLflow store at `uri` and aggregate them into tables.

    `experiment` and `sweep` default to the most recent sweep in the store; `alpha` is
    the significance level of the paired tests. Raises UserError for a sqlite store that
    does not exist, an unknown experiment or sweep, or an alpha outside (0, 1).
    `groupings`: the task-grouping section for every table (True), none (False), or for
    tables with task subsets other than single tasks and all of them (None).
    """
    from mtl_sweep.report.fronts import attach_fronts
    from mtl_sweep.report.grouping_analysis import attach_groupings
    from mtl_sweep.report.query import load_sweep
    from mtl_sweep.report.tables import build_tables, check_alpha
    from mtl_sweep.report.tuning import load_tuning, untuned_configs

    check_alpha(alpha)  # before the store is read
    runs = load_sweep(uri, experiment, sweep)
    tuning = load_tuning(runs) if runs.runs["tuned_from"].notna().any() else None
    if tuning is not None:  # the tables hold the final runs (docs/tuning.md)
        runs = untuned_configs(runs, tuning)
    report = build_tables(runs, group_by, alpha)
    report.tuning = tuning
    attach_groupings(report, runs.runs, groupings)
    attach_fronts(report, runs.runs)
    return report


def render_report(
    uri: str,
    experiment: str | None = None,
    sweep: str | None = None,
    fmt: str = "markdown",
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    alpha: float = DEFAULT_ALPHA,
    groupings: bool | None = None,
) -> str:
    """The report of a sweep as text in `fmt` (one of FORMATS); see `build_report`."""
    from mtl_sweep.report.render import render

    return render(build_report(uri, experiment, sweep, group_by, alpha, groupings), fmt)


__all__ = ["build_report", "render_report"]
