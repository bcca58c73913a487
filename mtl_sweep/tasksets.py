"""Task-set shorthands of `grid.tasks`: singles, all, pairs, leave_one_out, powerset."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

from mtl_sweep.tasks import TASKS, order_tasks

TaskSet = tuple[str, ...]


def _subsets(sizes: Callable[[int], range]) -> list[TaskSet]:
    return [c for k in sizes(len(TASKS)) for c in combinations(TASKS, k)]


SHORTHANDS: dict[str, list[TaskSet]] = {
    "singles": _subsets(lambda n: range(1, 2)),  # 4 single-task sets
    "all": [TASKS],  # the one four-task set
    "pairs": _subsets(lambda n: range(2, 3)),  # 6
    "leave_one_out": _subsets(lambda n: range(n - 1, n)),  # 4 three-task sets
    "powerset": _subsets(lambda n: range(1, n + 1)),  # 15 non-empty subsets
}


def expand_task_item(item: str | list[str]) -> list[TaskSet]:
    """Expand one `grid.tasks` item into task sets in canonical order.

    A shorthand gives its sets, a task name gives that task alone, and a list is one set.
    Raises ValueError with a message that lists the valid names.
    """
    if isinstance(item, str):
        if item in SHORTHANDS:
            return list(SHORTHANDS[item])
        if item in TASKS:
            return [(item,)]
        raise ValueError(
            f"unknown task or shorthand {item!r}; tasks: {', '.join(TASKS)}; "
            f"shorthands: {', '.join(SHORTHANDS)}"
        )
    if not item:
        raise ValueError("an explicit task set must name at least one task")
    return [order_tasks(item)]
