"""Captions and footnotes, as plain text that each format escapes: what the numbers are,
how the statistics were made and read, and which seeds failed or are missing."""

from __future__ import annotations

from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.budgets import budget_text
from mtl_sweep.report.cells import gain_unit, shown
from mtl_sweep.report.compare import detectable
from mtl_sweep.report.model.base import MISSING, MULTI, Row, Table
from mtl_sweep.report.model.document import Convention
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.stats import NO_SPREAD, POWER

MAX_NOTES = 12  # rows listed in a table's failure footnote before "and N more"
PLANNED_SEEDS = 3  # what the captions suggest when a table has one seed

DELTA_CONVENTION = (
    "Δm (%) = 100/T Σ_t s_t (M_t − S_t) / S_t over the row's T tasks, against the single-task "
    "rows with the same backbone, pretraining and seeds; s_t = +1 where higher is better, "
    "−1 where lower is better (Age MAE); positive means multi-task helps."
)
LATEX_DELTA_CONVENTION = (
    r"$\Delta_m = \frac{100}{T} \sum_t s_t (M_t - S_t) / S_t$ (\%) over the row's $T$ tasks, "
    r"against the single-task rows with the same backbone, pretraining and seeds; "
    r"$s_t = +1$ where higher is better, $-1$ where lower is better (Age MAE); "
    r"positive means multi-task helps."
)


def delta_interval(report: Report) -> str:
    """How Δm's interval is made."""
    return (
        f"Δm is computed seed by seed and shown as its mean [{confidence(report)} Student-t "
        "interval] over the seeds."
    )


def delta_convention(report: Report) -> str:
    """Δm's formula and how its interval is made, as plain text."""
    return f"{DELTA_CONVENTION} {delta_interval(report)}"


def delta_formula(report: Report) -> Convention:
    """Δm's formula (with its LaTeX math) and how its interval is made."""
    return Convention(DELTA_CONVENTION, LATEX_DELTA_CONVENTION, delta_interval(report))


def confidence(report: Report) -> str:
    """The intervals' level as text, e.g. `95%`."""
    return f"{100 * (1 - report.alpha):g}%"


def caption(table: Table, report: Report) -> str:
    """What is specific to this table: its seeds, its budget. What every table shares (the
    units, bold, the markers, Δm, the statistics) is said once, in "How to read this"."""
    n = table.common_n()
    if n is None:
        parts = ["n per cell."]
    elif n == 1 and table.has_weights:
        parts = [_one_seed()]
    elif n == 1:
        parts = ["n = 1 (one seed), so no std."]
    else:
        parts = [f"n = {n} seeds."]
    budget = budget_text(table)
    if budget:
        parts.append(budget)
    return " ".join(parts)


def _one_seed() -> str:
    return (
        "n = 1: no test and no std (one seed has no spread to test against); "
        f"run at least {PLANNED_SEEDS} seeds for intervals and markers."
    )


def paired_caption(table: Table, report: Report) -> str:
    """What is specific to this paired table: its one-seed and no-spread cells, and the
    smallest gains its n and spread detect (how to read it: "How to read this")."""
    rows = [r for r in table.rows if r.block == MULTI and r.paired]
    tests = [t for r in rows for t in r.paired.values()]
    parts = []
    if any(t.n == 1 for t in tests):
        parts.append(_one_seed())
    if any(t.no_test == NO_SPREAD for t in tests):
        parts.append("no spread: the gain was the same on every seed, so a t-test is undefined.")
    parts.append(detectable_text(rows, report))
    return " ".join(p for p in parts if p)


def detectable_text(rows: list[Row], report: Report) -> str:
    """The smallest gains the table's n and spread could detect, per task; empty if none."""
    found = detectable(rows, report.alpha)
    if not found:
        return ""
    ns = sorted({n for n, _ in found.values()})
    where = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    sizes = []
    for task, (_, mdd) in found.items():
        metric = PRIMARY_METRIC[task]
        sizes.append(f"{metric.label.split(' (')[0]} {shown(mdd, metric):.2f} {gain_unit(metric)}")
    return (
        f"Smallest gain detectable with {100 * POWER:g}% power at {where} and the spread "
        f"seen here (paired t, α = {report.alpha:g} before Holm): {'; '.join(sizes)}."
    )


def notes(table: Table) -> list[str]:
    """Footnotes: what `—` means, which seeds failed or are missing, and why a Δm is absent."""
    out = []
    if any(s.n == 0 for r in table.rows for s in r.cells.values()):
        out.append(f"{MISSING} : no finished run for that cell (see the failures below).")
    trouble = [r for r in table.rows if r.failed or r.unfinished or r.missing]
    for row in trouble[:MAX_NOTES]:
        what = [
            f"{_seeds(seeds)} {word}"
            for seeds, word in (
                (row.failed, "failed"),
                (row.unfinished, "unfinished"),
                (row.missing, "missing (no run)"),
            )
            if seeds
        ]
        out.append(f"{row_label(row)}: {'; '.join(what)}.")
    if len(trouble) > MAX_NOTES:
        out.append(f"... and {len(trouble) - MAX_NOTES} more rows with failed or missing seeds.")
    for row in table.rows:
        if row.block == MULTI and row.delta_m is None and row.delta_note:
            out.append(f"Δm {MISSING} for {row_label(row)}: {row.delta_note}.")
    return out


def _seeds(seeds: tuple[int, ...]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def row_label(row: Row) -> str:
    """A row's name with what tells it apart, e.g. `ResNet-18-Age_Gender [imdb_wiki] (uw)`."""
    extra = ", ".join(x for x in (row.weights_text, row.variant) if x)
    pretrain = f" [{row.pretrain}]" if row.pretrain != "none" and row.block != "pretraining" else ""
    return f"{row.name}{pretrain}" + (f" ({extra})" if extra else "")


def summary(report: Report) -> str:
    """One line: where the runs came from and how many trials finished, failed, are missing."""
    c = report.counts
    trials = (
        f"{c['trials_finished']} trials finished, {c['trials_failed']} failed, "
        f"{c['trials_unfinished']} unfinished, {c['trials_missing']} missing"
    )
    jobs = f"{c['pretrain_finished']} finished, {c['pretrain_failed']} failed"
    return (
        f"Experiment {report.experiment!r} in {report.uri}: {trials}; pretraining jobs: {jobs}. "
        "Only FINISHED runs are aggregated."
    )
