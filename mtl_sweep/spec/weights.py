"""`grid.weights` items: explicit weight vectors, and the lattices that trace a front.

An item is either one explicit vector (numbers in task order, or {task: weight} with
omitted tasks at 1), or a lattice that expands per task set into many vectors:

- `{ratios: [0.1, 0.3, 1, 3, 10]}`: for a pair (a, b) in task order, one vector per ratio
  r = w_a / w_b. Log-spaced ratios trace the pair's trade-off front evenly.
- `{simplex: N}`: for a set of k tasks, every vector of multiples of 1/N that sums to 1
  (C(N + k - 1, k - 1) of them), vertices and edges included.

Lattice vectors are scaled to sum to k, so the weights average 1: the scale the adaptive
strategies keep (DWA and GradNorm renormalise to k, uncertainty weighting starts at 1 each),
and the lattice's equal-weight point is today's default, the same trial. A single-task set
gets the one vector (1). Zero weights (simplex vertices and edges) are left for expansion to
apply: the task is removed and the cell collapses into the smaller set's (see `expand`).
Imports neither torch nor ray.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Field, PositiveFloat, Tag, model_validator

from mtl_core.settings import BooleanValue, Strict
from mtl_core.tasks import TASKS, TaskSet, tasks_tag

MAX_SIMPLEX = 100  # N; a four-task simplex then has 176,851 vectors, far past any sweep
DECIMALS = 12  # lattice weights are rounded here, so 2·1/3 and 2/3 give one trial key
# The tags pydantic puts into error locations for this union (the spec loader drops them).
LATTICE, VECTOR = "lattice", "vector"
UNION_TAGS = frozenset({LATTICE, VECTOR})


class WeightLattice(Strict):
    """A lattice of fixed weight vectors, expanded per task set: give one of the two keys."""

    # For a pair (a, b) in task order: the ratios w_a / w_b, e.g. [0.1, 0.3, 1, 3, 10].
    ratios: Annotated[list[PositiveFloat], Field(min_length=1)] | None = None
    # For any set of k tasks: every vector of multiples of 1/N that sums to 1 (scaled to k).
    simplex: Annotated[int, Field(ge=1, le=MAX_SIMPLEX, strict=True)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WeightLattice:
        if (self.ratios is None) == (self.simplex is None):
            raise ValueError("a weight lattice gives exactly one of ratios or simplex")
        return self


def _kind(value: Any) -> str:
    """A mapping with a lattice key is a lattice; anything else is an explicit vector."""
    if isinstance(value, WeightLattice):
        return LATTICE
    if isinstance(value, dict) and value.keys() & WeightLattice.model_fields.keys():
        return LATTICE
    return VECTOR


def _no_booleans(value: Any) -> Any:
    """YAML's true is not a weight of 1, though pydantic alone would read it so. (Strict's
    own check skips this field: a union with a model leaves the check to the model.)"""
    if isinstance(value, bool):
        raise BooleanValue(())
    pairs = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, weight in pairs:
        if isinstance(weight, bool):
            raise BooleanValue((key,))
    return value


WeightVector = list[float] | dict[str, float]
WeightItem = Annotated[
    Annotated[WeightLattice, Tag(LATTICE)]
    | Annotated[WeightVector, BeforeValidator(_no_booleans), Tag(VECTOR)],
    Discriminator(_kind),
]


def weight_vector(value: WeightVector) -> dict[str, float]:
    """Turn a weight vector (task order, or {task: w} with omitted tasks at 1) into a dict.

    Raises ValueError for a wrong length, an unknown task, a negative or non-finite
    weight, or all zeros.
    """
    if isinstance(value, dict):
        unknown = set(value) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown task {sorted(unknown)[0]!r}; known: {', '.join(TASKS)}")
        weights = {t: float(value.get(t, 1.0)) for t in TASKS}
    else:
        if len(value) != len(TASKS):
            raise ValueError(
                f"a weight vector has {len(TASKS)} numbers, in the order {', '.join(TASKS)}; "
                f"got {len(value)}"
            )
        weights = {t: float(w) for t, w in zip(TASKS, value, strict=True)}
    for task, w in weights.items():
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of {task} must be a finite number >= 0, got {w}")
    if not any(weights.values()):
        raise ValueError("all weights are zero: the vector trains no task")
    return weights


def check_item(item: WeightLattice | WeightVector) -> None:
    """Raise ValueError for a bad explicit vector (a lattice was checked by its model)."""
    if not isinstance(item, WeightLattice):
        weight_vector(item)


def vectors(item: WeightLattice | WeightVector, tasks: TaskSet) -> list[dict[str, float]]:
    """The weight vectors one `grid.weights` item gives the task set `tasks`.

    An explicit vector gives itself (over every task); a lattice gives its vectors over
    `tasks` (see the module docstring). Raises ValueError for ratios on more than two tasks.
    """
    if not isinstance(item, WeightLattice):
        return [weight_vector(item)]
    if item.simplex is not None:
        return simplex_vectors(tasks, item.simplex)
    assert item.ratios is not None
    return ratio_vectors(tasks, item.ratios)


def simplex_vectors(tasks: TaskSet, n: int) -> list[dict[str, float]]:
    """Every w = k·c/N over `tasks` (k of them) with c non-negative integers summing to N.

    Stars and bars: C(N + k - 1, k - 1) vectors, each c_t the gap between two bars.
    """
    k = len(tasks)
    out = []
    for bars in combinations(range(n + k - 1), k - 1):
        edges = (-1, *bars, n + k - 1)
        counts = [edges[i + 1] - edges[i] - 1 for i in range(k)]
        out.append({t: round(k * c / n, DECIMALS) for t, c in zip(tasks, counts, strict=True)})
    return out


def ratio_vectors(tasks: TaskSet, ratios: list[float]) -> list[dict[str, float]]:
    """For a pair (a, b): w_a = 2r/(1 + r), w_b = 2/(1 + r) per ratio r = w_a / w_b
    (the weights sum to 2); a single task gets weight 1."""
    if len(tasks) == 1:
        return [{tasks[0]: 1.0}]
    if len(tasks) != 2:
        raise ValueError(
            f"ratios trace a pair of tasks, and {tasks_tag(tasks)} has {len(tasks)}: "
            "give that set {simplex: N}, or the pairs their ratios in an include rule"
        )
    a, b = tasks
    return [{a: round(2 * r / (1 + r), DECIMALS), b: round(2 / (1 + r), DECIMALS)} for r in ratios]
