"""Each table's training budget, and multi-task rows whose budget is not their baselines'.

Trials log `budget/steps` and `budget/<task>_images` (trainables/trial_data.py). Under the
matched rule a multi-task row and its single-task rows have equal steps and equal images
per task; under the per_epoch rule they do not, and the comparison mixes sharing a network
with training longer. Such rows are flagged rather than hidden.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from mtl_sweep.report.model.base import MULTI, SINGLE, Row, Table

BUDGET = "budget/"
TOLERANCE = 0.01  # relative difference above which a comparison is flagged
MARK = "†"


def row_budget(per_run: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each budget metric over a row's finished runs (equal across seeds)."""
    sums: dict[str, list[float]] = {}
    for metrics in per_run:
        for name, value in metrics.items():
            sums.setdefault(name, []).append(float(value))
    return {name: sum(v) / len(v) for name, v in sums.items()}


def _differs(a: float | None, b: float | None) -> bool:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return False  # unknown (runs from before budgets were logged): nothing to compare
    return abs(a - b) > TOLERANCE * max(abs(a), abs(b), 1e-12)


def flag_unmatched(rows: list[Row]) -> None:
    """Mark (in `budget_note`, and † on the name) each multi-task row whose steps or
    per-task images differ by more than 1% from its single-task rows'."""
    singles = {(r.backbone, r.pretrain, r.tasks[0]): r for r in rows if r.block == SINGLE}
    for row in (r for r in rows if r.block == MULTI):
        diffs = []
        for task in row.tasks:
            single = singles.get((row.backbone, row.pretrain, task))
            if single is None:
                continue
            for what in ("steps", f"{task}_images"):
                mine, theirs = row.budget.get(BUDGET + what), single.budget.get(BUDGET + what)
                if _differs(mine, theirs):
                    diffs.append(f"{what} {mine:,.0f} vs {theirs:,.0f}")
        if diffs:
            row.budget_note = "; ".join(dict.fromkeys(diffs))
            row.name = f"{row.name} {MARK}"


def budget_text(table: Table) -> str:
    """One sentence: the steps and images per task the table's trials trained with, and the
    footnote for flagged rows."""
    trained = [r for r in table.rows if r.block in (MULTI, SINGLE) and r.budget]
    if not trained:
        return ""
    steps = sorted(
        {round(r.budget[BUDGET + "steps"]) for r in trained if BUDGET + "steps" in r.budget}
    )
    images = {
        t: round(r.budget[f"{BUDGET}{t}_images"])
        for r in trained
        for t in r.tasks
        if f"{BUDGET}{t}_images" in r.budget
    }
    parts = [f"Budget: {', '.join(f'{s:,}' for s in steps)} optimizer steps per trial"]
    if images:
        parts.append(", images per task " + ", ".join(f"{t} {n:,}" for t, n in images.items()))
    text = "".join(parts) + "."
    flagged = [r for r in trained if r.budget_note]
    if flagged:
        text += (
            f" {MARK}: this multi-task row trained with other steps or images per task than "
            "its single-task rows ("
            + "; ".join(f"{r.name}: {r.budget_note}" for r in flagged)
            + "), so its gains mix sharing a network with training longer "
            "(train.budget.rule: matched avoids it)."
        )
    return text
