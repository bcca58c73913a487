"""What `mtl-sweep plan` shows of a tuned sweep: its cells, samples, rungs and budgets."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from tabulate import tabulate

from mtl_sweep.budget import planned_budget
from mtl_sweep.expand import Plan
from mtl_sweep.search.cells import search_cells
from mtl_sweep.search.rounds import planned_rounds, rungs

AFTER_SEARCH = "after search"  # a final trial's status: its config is its cell's winner


def cell_rows(plan: Plan, done: Collection[str]) -> list[dict[str, Any]]:
    """Per cell: its samples (done of them), rounds, rungs, worst-case search steps (every
    sample at the full budget) and its final trials (seeds)."""
    search = plan.spec.search
    assert search is not None
    rows = []
    for cell in search_cells(plan):
        steps = planned_budget(cell.first.config).steps
        rounds = planned_rounds(cell.first.config)
        samples = cell.samples() if search.algorithm == "random" else []
        rows.append(
            {
                "cell": cell.id,
                "name": cell.name,
                "samples": search.samples,
                "samples_done": sum(s.key in done for s in samples),
                "rounds": rounds,
                "rungs": rungs(search.scheduler, rounds),
                "steps_per_trial": steps,
                "worst_case_search_steps": None if steps is None else steps * search.samples,
                "final_seeds": cell.seeds,
            }
        )
    return rows


def search_json(plan: Plan, done: Collection[str]) -> dict[str, Any]:
    """The `search` block of `plan --format json`."""
    search = plan.spec.search
    assert search is not None
    return {
        "algorithm": search.algorithm,
        "scheduler": search.scheduler.model_dump(),
        "objective": search.objective,
        "samples": search.samples,
        "space": {k: {d.kind: d.args} for k, d in search.space.items()},
        "cells": cell_rows(plan, done),
        "final_trials": AFTER_SEARCH,
    }


def search_table(plan: Plan, done: Collection[str]) -> list[str]:
    """The cells table and a line on the search, for `plan`'s text output."""
    search = plan.spec.search
    assert search is not None
    rows = cell_rows(plan, done)
    table = [
        [
            r["cell"],
            r["name"],
            f"{r['samples_done']}/{r['samples']}",
            "?" if r["rounds"] is None else r["rounds"],
            _rungs_text(search.scheduler.name, r["rungs"]),
            "?" if r["worst_case_search_steps"] is None else f"{r['worst_case_search_steps']:,}",
            ", ".join(f"s{s}" for s in r["final_seeds"]) + f" ({AFTER_SEARCH})",
        ]
        for r in rows
    ]
    heads = ["cell", "name", "samples done", "rounds", "rungs", "worst-case steps", "finals"]
    space = "; ".join(f"{k} {d.kind} {d.args}" for k, d in search.space.items())
    total = sum(r["worst_case_search_steps"] or 0 for r in rows)
    return [
        "Search cells (each searched apart; the trials below retrain each cell's winner)",
        tabulate(table, heads, tablefmt="simple"),
        f"search: {search.samples} sample(s) per cell ({search.algorithm}, seed {search.seed}) "
        f"over {space}; scheduler {search.scheduler.name}; objective {search.objective} on "
        f"val; at most {total:,} search steps over {len(rows)} cell(s); the final trials run "
        f"{AFTER_SEARCH}",
        "",
    ]


def _rungs_text(scheduler: str, at: list[int]) -> str:
    if scheduler == "none":
        return "none"
    if scheduler == "hyperband":
        return ", ".join(str(r) for r in at) + " (sync)" if at else "none"
    return ", ".join(str(r) for r in at) or "none"
