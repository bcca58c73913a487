"""Numbers as cell text: rounding, percent, signs, p-values, the markers and the best value.

Shared by every format. Text here is plain Unicode; each format escapes it (LaTeX turns
the markers ▲/▼ into daggers).
"""

from __future__ import annotations

import math

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC, Metric
from mtl_sweep.report.model.base import MISSING, MULTI, Column, Interval, Paired, Row, Stat, Table

DECIMALS: dict[str, int] = {"age_mae": 2, "age_eps": 3}  # shown decimals; accuracies: 1 (%)
DELTA_DECIMALS = 2


def decimals(metric: Metric) -> int:
    """Shown decimals: 1 for accuracies in percent, 2 for MAE in years, 3 for epsilon."""
    return DECIMALS.get(metric.name, 1 if metric.percent else 2)


def shown(value: float, metric: Metric) -> float:
    """A stored value in display units (accuracy fractions become percent)."""
    return value * 100.0 if metric.percent else value


def unit(metric: Metric) -> str:
    """The display unit of a metric's values."""
    return "%" if metric.percent else "years" if metric.name == "age_mae" else ""


def gain_unit(metric: Metric) -> str:
    """The unit of a difference of two values of a metric."""
    return "points" if metric.percent else unit(metric)


def cell_text(stat: Stat, metric: Metric, with_n: bool) -> str:
    """`91.2 ± 0.3`, `5.31` for one seed, `—` for none; `(n=2)` appended when asked."""
    if stat.n == 0:
        return MISSING
    d = decimals(metric)
    text = f"{shown(stat.mean, metric):.{d}f}"
    if stat.n > 1:
        text += f" ± {shown(stat.std, metric):.{d}f}"
    return f"{text} (n={stat.n})" if with_n else text


def direction(row: Row, column: Column) -> int:
    """+1 (▲) where a multi-task cell is significantly better than single-task, -1 (▼)
    where it is significantly worse, 0 otherwise."""
    test = row.paired.get(column.task) if row.block == MULTI else None
    if test is None or column.key != C.TEST + PRIMARY_METRIC[column.task].name:
        return 0  # the test is on the task's headline metric only
    return test.direction


def interval_text(low: float, high: float, d: int) -> str:
    """`[-0.30, +3.22]`; `—` when the interval is undefined (n < 2)."""
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"[{low:+.{d}f}, {high:+.{d}f}]"


def delta_text(stat: Interval | None, with_n: bool) -> str:
    """Δm with its sign and interval, e.g. `+1.46 [-0.30, +3.22]`; `+1.46` for one seed;
    `—` when it could not be computed."""
    if stat is None:
        return MISSING
    text = f"{stat.mean:+.{DELTA_DECIMALS}f}"
    if stat.n > 1:
        text += " " + interval_text(stat.low, stat.high, DELTA_DECIMALS)
    return f"{text} (n={stat.n})" if with_n else text


def gain_decimals(metric: Metric) -> int:
    """Differences get one decimal more than the values: they are smaller."""
    return decimals(metric) + 1


def gain_text(value: float, metric: Metric) -> str:
    """A signed gain in display units, e.g. `+1.25` (points) or `-0.120` (years)."""
    return f"{shown(value, metric):+.{gain_decimals(metric)}f}"


def p_text(p: float) -> str:
    """A p-value to three decimals, `<0.001` below that."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def no_test_text(test: Paired) -> str:
    """Why a cell has no p-value, e.g. `no test (n = 1)`."""
    return f"no test ({test.no_test})"


def best_rows(table: Table, column: Column | None) -> set[int]:
    """Indices of the rows holding the best shown value of a metric column (or of Δm when
    `column` is None). Ties at the shown precision all count; a column with fewer than two
    values has no best."""
    found: dict[int, float] = {}
    for i, row in enumerate(table.rows):
        if column is None:
            if row.block == MULTI and row.delta_m is not None:
                found[i] = round(row.delta_m.mean, DELTA_DECIMALS)
        elif (stat := row.cells.get(column.key)) is not None and stat.n:
            found[i] = round(shown(stat.mean, column.metric), decimals(column.metric))
    if len(found) < 2:
        return set()  # a single value is not a comparison
    higher = column is None or column.metric.higher_is_better
    best = max(found.values()) if higher else min(found.values())
    return {i for i, v in found.items() if v == best}


def num(x: float) -> float | None:
    """A number for JSON/CSV: None for NaN, rounded past any shown precision (0.912 * 100
    gives 91.2, not 91.20000000000002)."""
    return None if math.isnan(x) else round(x, 9)
