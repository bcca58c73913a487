"""Laying rows out as tables: the grouping, the titles and the order of rows.

Backbones come in the order the sweep first started them (its grid order), no pretraining
before the stages, weightings as the spec lists them; within a table, multi-task rows
first, then single-task rows, then the reference models of the same setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from mtl_core.backbones import display_name
from mtl_core.tasks import TASKS
from mtl_sweep.report.model.base import (
    METRICS,
    MULTI,
    PRETRAINING,
    REFERENCE,
    SINGLE,
    WEIGHTINGS,
    Column,
    Row,
    Table,
)


@dataclass(frozen=True)
class Order:
    """Sort keys. Backbones come in the order the sweep first started them (its grid order),
    no pretraining before the stages, weightings as in WEIGHTINGS."""

    backbones: Mapping[str, int]  # backbone -> rank

    @classmethod
    def of(cls, rows: Iterable[Row]) -> Order:
        first: dict[str, int] = {}
        for r in rows:
            first[r.backbone] = min(first.get(r.backbone, r.first_start), r.first_start)
        ranked = sorted(first, key=lambda b: (first[b], b))
        return cls({b: i for i, b in enumerate(ranked)})

    def value(self, key: str, value: str) -> tuple[object, ...]:
        """Where a value of a grouping key sorts."""
        if key == "backbone":
            return (self.backbones.get(value, len(self.backbones)), value)
        if key == "pretrain":
            return (value != "none", value)
        return (WEIGHTINGS.index(value) if value in WEIGHTINGS else len(WEIGHTINGS), value)

    def rows(self, rows: Iterable[Row]) -> list[Row]:
        """Multi-task rows first (more tasks first, equal weights first), then single-task
        rows in task order, then the reference models; pretraining jobs by backbone."""
        blocks = (MULTI, PRETRAINING, SINGLE, REFERENCE)

        def key(r: Row) -> tuple[object, ...]:
            return (
                blocks.index(r.block),
                r.label or "",
                self.value("backbone", r.backbone),
                self.value("pretrain", r.pretrain),
                -len(r.tasks),
                tuple(TASKS.index(t) for t in r.tasks),
                self.value("weighting", r.weighting),
                tuple(-w for w in r.weights or ()),
                sorted(r.config.items()),
            )

        return sorted(rows, key=key)


def _group_title(
    group: tuple[str, ...], values: tuple[str, ...], stage_data: Mapping[str, tuple[str, ...]]
) -> str:
    parts = []
    for key, value in zip(group, values, strict=True):
        if key == "backbone":
            parts.append(display_name(value))
        elif key == "pretrain":
            data = stage_data.get(value)
            parts.append(
                "no pretraining"
                if value == "none"
                else f"pretrained on {value}" + (f" ({', '.join(data)})" if data else "")
            )
        else:
            parts.append(f"{value} weighting")
    return ", ".join(parts) or "All trials"


def main_tables(
    rows: list[Row],
    group: tuple[str, ...],
    stage_data: Mapping[str, tuple[str, ...]],
    order: Order,
) -> list[Table]:
    """Split the main rows on `group`, then place each reference model (`tables` rule 5)."""
    main = [r for r in rows if r.block in (MULTI, SINGLE)]
    buckets: dict[tuple[str, ...], list[Row]] = {}
    for r in main:
        buckets.setdefault(tuple(getattr(r, k) for k in group), []).append(r)
    keys = sorted(buckets, key=lambda v: [order.value(k, x) for k, x in zip(group, v, strict=True)])
    placed: dict[tuple[str, ...], list[Row]] = {v: [] for v in keys}
    unplaced = []
    for ref in (r for r in rows if r.block == REFERENCE):
        homes = [
            v
            for v in keys
            if all(getattr(ref, k) == x for k, x in zip(group, v, strict=True) if k != "backbone")
            and set(ref.tasks) <= {t for r in buckets[v] for t in r.tasks}
        ]
        for v in homes:
            placed[v].append(ref)
        if not homes:
            unplaced.append(ref)
    tables = [
        table_of(_group_title(group, v, stage_data), order.rows(buckets[v] + placed[v]))
        for v in keys
    ]
    if unplaced:
        tables.append(table_of("Reference models", order.rows(unplaced)))
    return tables


def table_of(title: str, rows: list[Row]) -> Table:
    """A table over `rows`: one column per metric any row trained, headed with its data."""
    columns = []
    for key, (task, metric) in METRICS.items():
        having = [r for r in rows if key in r.cells]
        if having:
            datasets = sorted({d for r in having for d in r.datasets.get(task, ())})
            columns.append(Column(key, task, metric, tuple(datasets)))
    rows = [_with_variant(r, rows) for r in rows]
    return Table(title=title, columns=columns, rows=rows)


def _with_variant(row: Row, rows: list[Row]) -> Row:
    """Name the params that tell `row` apart from rows that would look the same."""
    twins = [r for r in rows if r.look == row.look]
    if len(twins) < 2:
        return row
    keys = sorted({k for r in twins for k in r.config})
    differ = [k for k in keys if len({r.config.get(k) for r in twins}) > 1]
    text = ", ".join(f"{k}={row.config.get(k, '-')}" for k in differ)
    # Copy: a reference row may sit in several tables with different twins.
    return replace(row, variant=text)
