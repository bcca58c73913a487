""" "How to read this": every explanation the tables share, said once, as plain text.

Each table's own caption then carries only what is specific to it (its n, its budget,
its smallest detectable gains, its failures). A paragraph appears only where the report
has what it explains: no ε-error definition without an ε-error column, no test
explanation without a test.
"""

from __future__ import annotations

from mtl_sweep.report.budgets import MARK
from mtl_sweep.report.captions import confidence, delta_formula
from mtl_sweep.report.model.base import BETTER, MULTI, WORSE
from mtl_sweep.report.model.document import Convention, Section
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.stats import POWER, WILCOXON_MIN_N

TITLE = "How to read this"

EPSILON = (
    "Age ε-error is ChaLearn's apparent-age error: the mean over test images of "
    "1 − exp(−(x − μ)² / (2σ²)), with x the predicted age and μ and σ the mean and standard "
    "deviation of the human votes for that image. It lies in [0, 1]; lower is better (0: every "
    "prediction on the votes' mean)."
)
BUDGET_RULE = (
    "Budget: under train.budget.rule matched (the default), every trial of a table runs the "
    "same number of optimizer steps, and each step draws a batch from every source the trial "
    "reads, so a task sees as many of its own images trained alone as trained with others; "
    "each table states its steps and images per task. Under per_epoch, arms differ in steps."
)
FLAGGED = f"{MARK}: a multi-task row whose budget differs from its single-task rows'."


def numbers(percent: bool, mae: bool, epsilon: bool, bold: bool) -> str:
    """What a cell is, and the units present."""
    units = [
        *(["accuracies in percent (their gains in percentage points)"] if percent else []),
        *(["Age MAE in years"] if mae else []),
    ]
    text = (
        "Each cell is the mean ± sample standard deviation (ddof = 1) over the seeds that "
        "finished; only FINISHED runs count, and a table whose cells have different seed "
        "counts gives n per cell."
    )
    if units:
        text += " Units: " + "; ".join(units) + "."
    if bold:
        text += " Bold: the best value of its column in a table."
    return text + (" " + EPSILON if epsilon else "")


def statistics(confidence: str, alpha: float, tests: int, wilcoxon: bool) -> str:
    """How the paired tests, Holm's correction, the markers and the verdicts work."""
    text = (
        "Paired differences: each multi-task cell is paired by seed with the single-task row "
        "of the same backbone, pretraining and settings; a seed either side did not finish is "
        "dropped, and n counts the pairs. MTL and STL are means over those seeds. Gain = "
        "MTL − STL, signed so that + means multi-task is better (STL − MTL in years for Age "
        f"MAE), with the {confidence} Student-t interval of its mean. p: two-sided paired "
        f"t-test. p (Holm): Holm–Bonferroni over all {tests} tests of this report at once "
        "(the paired tests and the pretraining-interaction tests), so no p-value depends on "
        f"how the report is grouped. {BETTER}/{WORSE}: significantly better/worse, p (Holm) < "
        f"{alpha:g}. Anything else is 'no detectable difference', quoted with the smallest "
        f"true gain a paired t-test at α = {alpha:g} (before Holm) would detect with "
        f"{100 * POWER:g}% power at that n and the spread seen. One seed (n = 1) has no "
        "spread: no interval, no test."
    )
    if wilcoxon:
        text += f" p (Wilcoxon): the signed-rank test where n ≥ {WILCOXON_MIN_N}, unadjusted."
    return text


def interaction(confidence: str) -> str:
    """How pretraining's effect on a multi-task gain is tested."""
    return (
        "Pretraining interaction: for a multi-task cell trained both with a pretraining stage "
        "and without, each seed gives (its gain with pretraining) − (its gain without), each "
        "side against its own single-task rows of that seed; the differences' mean, "
        f"{confidence} Student-t interval and one-sample t-test are read like a gain, and the "
        "test joins the report's Holm family. + means pretraining raises the multi-task gain."
    )


def guide_section(report: Report) -> Section:
    """The shared explanations of `report`, once (`how_to_read`); each paragraph only where
    the report has what it explains."""
    rows = [r for t in report.tables for r in t.rows]
    columns = {c.metric.name for t in report.tables for c in t.columns}
    tests = [p for r in rows if r.block == MULTI for p in r.paired.values()]
    level = confidence(report)
    text: list[str | Convention] = []
    if report.tables:
        text.append(
            numbers(
                percent=any(t.endswith("_acc") for t in columns),
                mae="age_mae" in columns,
                epsilon="age_eps" in columns,
                bold=True,
            )
        )
    if any(r.block == MULTI for r in rows):
        text.append(delta_formula(report))
    if any(t.tested for t in tests) or report.findings.interactions:
        wilcoxon = any(t.n >= WILCOXON_MIN_N for t in tests)
        text.append(statistics(level, report.alpha, report.tests, wilcoxon))
    if report.findings.interactions:
        text.append(interaction(level))
    if any(r.budget for r in rows):
        flagged = any(r.budget_note for r in rows)
        text.append(f"{BUDGET_RULE} {FLAGGED}" if flagged else BUDGET_RULE)
    data = [t.plain if isinstance(t, Convention) else t for t in text]
    return Section(key="how_to_read", blocks=[], data=data, title=TITLE, text=text)
