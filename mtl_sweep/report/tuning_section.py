"""A tuned sweep's search as a document section: the tuning table (per cell: chosen values,
best validation objective, spread over the samples, search steps), warnings for chosen
values at a range's edge, the budget comparison (†), the caption the comparison tables
get, and the sensitivity panels of `--plot`. JSON and CSV carry all of it."""

from __future__ import annotations

import math
from typing import Any

from mtl_sweep.report.model.document import Cell, Section, SensitivityPanel, TextTable
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.model.tuning import BUDGET_TOLERANCE, DAGGER, TunedCell, Tuning

OBJECTIVES = {
    "relative": "relative objective: mean over a cell's tasks of 1 − MAE/MAE_trivial (age) or "
    "(acc − acc_trivial)/(1 − acc_trivial), on validation",
    "val_loss": "val_loss objective: minus the mean over a cell's tasks of the validation loss",
}


def tuning_caption(tuning: Tuning) -> str:
    """What the comparison tables' captions say of how their rows were tuned."""
    keys = ", ".join(tuning.space) or "the searched settings"
    return (
        f"Tuned: each row is its cell's best of {tuning.samples} {tuning.algorithm} samples "
        f"of {keys} (the same samples in every cell), searched apart per cell with "
        f"{tuning.scheduler} early stopping, selected on validation by the "
        f"{OBJECTIVES.get(tuning.objective, tuning.objective)}, then retrained at the full "
        "budget with every seed and reported on test (the tuning table)."
    )


def budget_notes(tuning: Tuning) -> list[str]:
    """A † note per comparison whose arms' search steps differ past the tolerance."""
    return [
        f"{DAGGER} {mtl} vs {', '.join(singles)}: search steps differ by a factor of "
        f"{ratio:.2f} (more than {BUDGET_TOLERANCE:.0%}): the arms were not tuned alike."
        for mtl, singles, ratio in tuning.comparisons
        if ratio > 1 + BUDGET_TOLERANCE
    ]


def tuning_section(report: Report) -> Section | None:
    """The tuning table as a section (`tuning`); None for an untuned sweep."""
    tuning = report.tuning
    if tuning is None:
        return None
    keys = list(tuning.space) or sorted(
        {k for c in tuning.cells for p in c.points for k in p.values}
    )
    heads = ["cell", *keys, "best val objective", "spread (mean ± std, min–max)", "samples"]
    heads += ["search steps"]
    rows = [_row(c, keys) for c in tuning.cells]
    notes = [f"{c.name}: {w}" for c in tuning.cells for w in c.edges]
    notes += budget_notes(tuning)
    notes += [_ratio_line(tuning)]
    table = TextTable(
        "Tuning",
        heads,
        rows,
        "Per cell: the values its final runs retrain (best validation objective among the "
        "samples that ran the full budget; a sample stopped early never wins), that "
        "objective, the spread of the full-budget samples' objectives, the samples (full / "
        f"stopped early) and the optimizer steps the search spent, stopped samples counted "
        f"for what they ran. {OBJECTIVES.get(tuning.objective, tuning.objective)}.",
        align=["left"] * len(heads),
        notes=notes,
        label="tuning",
    )
    return Section(
        key="tuning",
        blocks=[[table]],
        data=tuning_json(tuning),
        records=[_record(c, keys) for c in tuning.cells],
        first=("cell", "name"),
    )


def _ratio_line(tuning: Tuning) -> str:
    steps = [c.steps for c in tuning.cells if c.steps]
    if not steps:
        return "No search steps were logged."
    return (
        f"Search steps per cell: {min(steps):,}–{max(steps):,} (max/min "
        f"{max(steps) / min(steps):.2f}; tolerance {1 + BUDGET_TOLERANCE:.2f})."
    )


def _value_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _row(cell: TunedCell, keys: list[str]) -> list[Cell]:
    chosen = cell.chosen
    values = [_value_text(chosen.values.get(k, "—")) if chosen else "—" for k in keys]
    spread = cell.spread
    full = [p.objective for p in cell.full]
    spread_text = (
        f"{spread.mean:.3f} ± {spread.std:.3f}, {min(full):.3f}–{max(full):.3f}"
        if full and not math.isnan(spread.std)
        else (f"{full[0]:.3f}" if full else "—")
    )
    stopped = sum(p.stopped for p in cell.points)
    steps = f"{cell.steps:,}" + (f" {DAGGER}" if cell.flagged else "")
    best = f"{chosen.objective:.3f}" if chosen else "— (no final runs yet)"
    edge = " ⚠" if cell.edges else ""
    return [
        Cell(cell.name + edge),
        *map(Cell, values),
        Cell(best),
        Cell(spread_text),
        Cell(f"{len(cell.points) - stopped} full / {stopped} stopped"),
        Cell(steps),
    ]


def _point_json(p) -> dict[str, Any]:
    return {
        "sample": p.index,
        "values": p.values,
        "objective": None if math.isnan(p.objective) else p.objective,
        "steps": p.steps,
        "stopped_early": p.stopped,
        "run_id": p.run_id,
    }


def tuning_json(tuning: Tuning) -> dict[str, Any]:
    """Everything of the tuning, JSON-ready."""
    return {
        "space": tuning.space,
        "samples": tuning.samples,
        "algorithm": tuning.algorithm,
        "scheduler": tuning.scheduler,
        "objective": tuning.objective,
        "tolerance": BUDGET_TOLERANCE,
        "cells": [
            {
                "cell": c.cell,
                "name": c.name,
                "tasks": list(c.tasks),
                "backbone": c.backbone,
                "pretrain": c.pretrain,
                "chosen": _point_json(c.chosen) if c.chosen else None,
                "spread": {"mean": _num(c.spread.mean), "std": _num(c.spread.std), "n": c.spread.n},
                "search_steps": c.steps,
                "edge_warnings": c.edges,
                "flagged": c.flagged,
                "samples": [_point_json(p) for p in c.points],
            }
            for c in tuning.cells
        ],
        "comparisons": [
            {
                "multi_task": m,
                "single_task": s,
                "steps_ratio": r,
                "flagged": r > 1 + BUDGET_TOLERANCE,
            }
            for m, s, r in tuning.comparisons
        ],
    }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _record(cell: TunedCell, keys: list[str]) -> dict[str, Any]:
    chosen = cell.chosen
    out: dict[str, Any] = {"cell": cell.cell, "name": cell.name}
    out.update({f"chosen {k}": chosen.values.get(k) if chosen else None for k in keys})
    out["best val objective"] = chosen.objective if chosen else None
    out["spread mean"], out["spread std"] = _num(cell.spread.mean), _num(cell.spread.std)
    out["samples full"] = len(cell.full)
    out["samples stopped"] = sum(p.stopped for p in cell.points)
    out["search steps"] = cell.steps
    out["flagged"] = DAGGER if cell.flagged else ""
    out["edge warnings"] = "; ".join(cell.edges)
    return out


def sensitivity_panels(report: Report) -> list[SensitivityPanel]:
    """Per searched dimension and task: each cell that trains the task, objective vs value."""
    tuning = report.tuning
    if tuning is None:
        return []
    tasks = [
        t for t in ("age", "gender", "emotion", "smile") if any(t in c.tasks for c in tuning.cells)
    ]
    panels = []
    for key, dist in tuning.space.items():
        kind = next(iter(dist))
        if kind == "choice":
            continue
        for task in tasks:
            series = [
                (
                    c.name,
                    sorted(
                        (float(p.values[key]), p.objective, p.stopped)
                        for p in c.points
                        if key in p.values and not math.isnan(p.objective)
                    ),
                )
                for c in tuning.cells
                if task in c.tasks
            ]
            panels.append(
                SensitivityPanel(key, task, kind == "loguniform", series, tuning.objective)
            )
    return panels
