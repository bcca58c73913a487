"""The cells of a spec's grid: rules 1 to 3 of expansion (see expand.py).

A cell is one combination of the axes (tasks, backbone, pretrain, weighting, weights,
seed) with the train settings of the rule that made it; nothing here is resolved yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

from mtl_core.errors import SpecError
from mtl_core.tasks import TaskSet, expand_task_item
from mtl_sweep.spec.schema import MatchSpec, Spec, TrainSpec
from mtl_sweep.spec.weights import vectors


@dataclass(frozen=True)
class Cell:
    """One combination of the grid's axes, before it is resolved into a trial."""

    tasks: TaskSet
    backbone: str
    pretrain: str
    weighting: str
    weights: dict[str, float]
    seed: int
    train: TrainSpec
    label: str | None
    where: str  # key path of the rule that made it, for errors
    duplicate_taskset: bool

    @property
    def train_where(self) -> str:
        """Key path of its train settings: the sweep's `train`, or its include rule's."""
        return "train" if self.where == "grid" else f"{self.where}.train"


def _axis(rule: Any, grid: Any, name: str) -> list[Any]:
    value = getattr(rule, name)
    return getattr(grid, name) if value is None else value


def cells(
    spec: Spec, rule: Any, train: TrainSpec, label: str | None, where: str, file: str = "<spec>"
) -> Iterator[Cell]:
    """Rule 1 (or an include rule's small grid): the product of the rule's axes, omitted
    axes taking the main grid's values. A weight lattice gives each task set its own
    vectors (spec/weights.py); `file` names the spec in a lattice's error."""
    grid = spec.grid
    tasksets: list[TaskSet] = []
    for item in _axis(rule, grid, "tasks"):
        tasksets.extend(expand_task_item(item))
    seen: set[TaskSet] = set()
    task_flags = []
    for ts in tasksets:
        task_flags.append((ts, ts in seen))
        seen.add(ts)
    items = _axis(rule, grid, "weights")
    items_where = "grid.weights" if rule.weights is None or where == "grid" else f"{where}.weights"
    per_set = {ts: _weight_vectors(items, ts, file, items_where) for ts in seen}
    axes = product(
        _axis(rule, grid, "backbone"),
        _axis(rule, grid, "pretrain"),
        task_flags,
        _axis(rule, grid, "weighting"),
    )
    seeds = _axis(rule, grid, "seed")
    for backbone, pretrain, (tasks, dup), weighting in axes:
        for weights in per_set[tasks]:
            for seed in seeds:
                yield Cell(
                    tasks, backbone, pretrain, weighting, weights, seed, train, label, where, dup
                )


def _weight_vectors(
    items: list[Any], tasks: TaskSet, file: str, where: str
) -> list[dict[str, float]]:
    """Every weights item's vectors for one task set, in item order."""
    out: list[dict[str, float]] = []
    for i, item in enumerate(items):
        try:
            out.extend(vectors(item, tasks))
        except ValueError as exc:
            raise SpecError(file, f"{where}[{i}]", str(exc)) from None
    return out


class Exclusions:
    """The grid's `exclude` rules, their task sets expanded once."""

    def __init__(self, rules: list[MatchSpec]) -> None:
        self.rules = [
            (
                rule,
                None
                if rule.tasks is None
                else {ts for i in rule.tasks for ts in expand_task_item(i)},
            )
            for rule in rules
        ]

    def __call__(self, cell: Cell) -> bool:
        """True when some rule matches the cell on every axis it names."""
        return any(_matches(rule, sets, cell) for rule, sets in self.rules)


def _matches(rule: MatchSpec, sets: set[TaskSet] | None, cell: Cell) -> bool:
    if sets is not None and cell.tasks not in sets:
        return False
    return all(
        getattr(rule, axis) is None or getattr(cell, axis) in getattr(rule, axis)
        for axis in ("backbone", "pretrain", "weighting", "seed")
    )


def weigh(cell: Cell, notes: list[str]) -> tuple[TaskSet, str, dict[str, float]] | None:
    """Rule 3: the trial's tasks, weighting and weights (None: every task weighs zero);
    appends to `notes` what the rule changed."""
    tasks, weighting = cell.tasks, cell.weighting
    if weighting == "fixed":
        kept = tuple(t for t in tasks if cell.weights[t] > 0)
        if not kept:
            return None
        if kept != tasks:
            notes.append("a zero weight removed a task")
        if len(kept) == 1:
            notes.append("single-task trials ignore weight vectors")
            return kept, "fixed", {kept[0]: 1.0}
        return kept, "fixed", {t: cell.weights[t] for t in kept}
    if len(tasks) == 1:
        notes.append("single-task trials use no weighting strategy")
        return tasks, "fixed", {tasks[0]: 1.0}
    notes.append("adaptive weighting ignores weight vectors")
    return tasks, weighting, dict.fromkeys(tasks, 1.0)
