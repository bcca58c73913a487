""" "How to read this": every explanation the tables share, said once, as plain text.

Each table's own caption then carries only what is specific to it (its n, its budget,
its smallest detectable gains, its failures). A paragraph appears only where the report
has what it explains: no ε-error definition without an ε-error column, no test
explanation without a test.
"""

from __future__ import annotations

from collections.abc import Iterable

from mtl_sweep.report.cells import BETTER, WORSE
from mtl_sweep.report.stats import POWER, WILCOXON_MIN_N

TITLE = "How to read this"

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
    "the tables state the steps and images per task. Under per_epoch, arms differ in steps, "
    "and a multi-task row whose budget differs from its single-task rows is marked †."
)


def numbers(percent: bool, mae: bool, epsilon: bool) -> str:
    """What a cell is, and the units present."""
    units = [
        *(["accuracies in percent (gains in percentage points)"] if percent else []),
        *(["Age MAE in years"] if mae else []),
    ]
    text = (
        "Each cell is the mean ± sample standard deviation (ddof = 1) over the seeds that "
        "finished; a table whose cells have different seed counts gives n per cell. Only "
        "FINISHED runs count."
    )
    if units:
        text += " Units: " + "; ".join(units) + "."
    return text + (" " + EPSILON if epsilon else "")


def delta(confidence: str) -> str:
    """Δm's formula and how its interval is made."""
    return (
        f"{DELTA_CONVENTION} Δm is computed seed by seed and shown as its mean "
        f"[{confidence} Student-t interval] over the seeds."
    )


def statistics(confidence: str, alpha: float, tests: int, wilcoxon: bool) -> str:
    """How the paired tests, Holm's correction, the markers and the verdicts work."""
    text = (
        "Each multi-task cell is paired by seed with the single-task row of the same backbone, "
        "pretraining and settings; a seed either side did not finish is dropped, and n counts "
        "the pairs. Gain = multi-task − single-task, signed so that + means multi-task is "
        "better (single-task − multi-task in years for Age MAE), with the "
        f"{confidence} Student-t interval of its mean. p: two-sided paired t-test. "
        f"p (Holm): Holm–Bonferroni over all {tests} tests of this report at once (the paired "
        "tests and the pretraining-interaction tests), so no table's p-values depend on how "
        f"the report is grouped. {BETTER}/{WORSE}: significantly better/worse, p (Holm) < "
        f"{alpha:g}; in the findings, anything else is 'no detectable difference', quoted with "
        f"the smallest true gain a paired t-test at α = {alpha:g} (before Holm) would detect "
        f"with {100 * POWER:g}% power at that n and the spread seen. One seed (n = 1) has no "
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


def paragraphs(
    *,
    confidence: str,
    alpha: float,
    tests: int,
    metrics: Iterable[str],
    multi: bool,
    tested: bool,
    wilcoxon: bool,
    interactions: bool,
    budget: bool,
) -> list[str]:
    """The section's paragraphs for a report with these `metrics` (metric names shown,
    e.g. age_mae, gender_acc) and these features."""
    names = set(metrics)
    out = [
        numbers(
            percent=any(n.endswith("_acc") for n in names),
            mae="age_mae" in names,
            epsilon="age_eps" in names,
        )
    ]
    if multi:
        out.append(delta(confidence))
    if tested:
        out.append(statistics(confidence, alpha, tests, wilcoxon))
    if interactions:
        out.append(interaction(confidence))
    if budget:
        out.append(BUDGET_RULE)
    return out
