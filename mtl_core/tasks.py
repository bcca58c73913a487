"""The task vocabulary: the four tasks, their canonical order, headline metrics and task sets.

Shared by the spec, the MLflow contract, the report and the trainables, so it is
plain Python with no heavy imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

# Canonical order: tags, weight vectors and table columns all follow it.
TASKS: tuple[str, ...] = ("age", "gender", "emotion", "smile")
Task = Literal["age", "gender", "emotion", "smile"]

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: dict[str, int] = {"gender": 2, "emotion": len(EMOTIONS), "smile": 2}
AGE_RANGE: tuple[int, int] = (0, 100)  # years, inclusive; the DEX head has one bin per year


@dataclass(frozen=True)
class Metric:
    """A headline metric: its MLflow name, direction and how the report labels it."""

    name: str  # MLflow key suffix, e.g. "age_mae" in "test/age_mae"
    higher_is_better: bool
    label: str  # report column heading, before the dataset name
    percent: bool  # accuracies are stored as fractions and shown as percent

    @property
    def sign(self) -> int:
        """+1 where higher is better, -1 where lower is better (s_t in Delta-m)."""
        return 1 if self.higher_is_better else -1


PRIMARY_METRIC: dict[str, Metric] = {
    "age": Metric("age_mae", False, "Age MAE", False),
    "gender": Metric("gender_acc", True, "Gender Acc (%)", True),
    "emotion": Metric("emotion_acc", True, "Emotion Acc (%)", True),
    "smile": Metric("smile_acc", True, "Smile Acc (%)", True),
}
# Extra metrics a task may log; the age epsilon-error exists only where a per-image std is known.
EXTRA_METRICS: dict[str, tuple[Metric, ...]] = {
    "age": (Metric("age_eps", False, "Age ε-error", False),),
}
# The one list of every metric: task -> its headline metric, then its extras.
TASK_METRICS: dict[str, tuple[Metric, ...]] = {
    t: (PRIMARY_METRIC[t], *EXTRA_METRICS.get(t, ())) for t in TASKS
}


def order_tasks(tasks: Iterable[str]) -> tuple[str, ...]:
    """Return the distinct tasks in canonical order; unknown names raise ValueError."""
    wanted = set(tasks)
    unknown = wanted - set(TASKS)
    if unknown:
        raise ValueError(f"unknown task {sorted(unknown)[0]!r}; known: {', '.join(TASKS)}")
    return tuple(t for t in TASKS if t in wanted)


def tasks_tag(tasks: Iterable[str]) -> str:
    """The `mtl_sweep.tasks` tag value: tasks in canonical order joined by '+'."""
    return "+".join(order_tasks(tasks))


def parse_tasks_tag(tag: str) -> tuple[str, ...]:
    """Inverse of `tasks_tag`."""
    return order_tasks(tag.split("+")) if tag else ()


# --- Task sets: the shorthands of `grid.tasks` ---------------------------------------------
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
