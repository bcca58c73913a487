"""Rendering an expanded plan for `mtl-sweep plan`: jobs, trials, then the counts."""

from __future__ import annotations

import json
from collections.abc import Collection

from tabulate import tabulate

from mtl_core.tasks import tasks_tag
from mtl_core.trial import TrialConfig
from mtl_sweep.budget import planned_budget
from mtl_sweep.expand import Plan, Trial
from mtl_sweep.search.plan_view import AFTER_SEARCH, search_json, search_table


def weights_text(trial: Trial) -> str:
    """`fixed` weights over the trial's tasks in task order, or the strategy's name."""
    if trial.config.weighting != "fixed":
        return trial.config.weighting
    return ", ".join(f"{w:g}" for w in trial.config.loss_weights.values())


def summary(plan: Plan) -> str:
    """One line of counts that adds up: main-grid and reference-model trials, then the sum
    that makes them (grid cells − excluded + added by include − collapsed, with why),
    then the pretraining jobs. Include rules add cells to both kinds of trial, so the sum
    is over all trials."""
    line = f"{len(plan.main)} trials in the main grid"
    if plan.reference:
        line += f" + {len(plan.reference)} reference-model trials"
    terms = []
    if plan.excluded:
        terms.append(f" − {plan.excluded} excluded")
    if plan.included:
        terms.append(f" + {plan.included} added by include")
    n_collapsed = sum(plan.collapsed.values())
    if n_collapsed:
        why = "; ".join(f"{n} {reason}" for reason, n in plan.collapsed.most_common())
        terms.append(f" − {n_collapsed} collapsed ({why})")
    if terms:
        line += f" = {plan.cells} grid cells" + "".join(terms)
    else:
        line += f" (the grid's {plan.cells} cells)"
    return line + f"; {len(plan.jobs)} pretraining job{'' if len(plan.jobs) == 1 else 's'}"


def render_plan(plan: Plan, fmt: str = "table", done: Collection[str] = ()) -> str:
    """The plan as a text table or as JSON; keys in `done` are marked as already run."""
    return _plan_json(plan, done) if fmt == "json" else _plan_table(plan, done)


def _budget_json(config: TrialConfig) -> dict[str, object]:
    budget = planned_budget(config)
    return {"rule": config.train.budget.rule, "steps": budget.steps, "images": budget.images}


def _plan_json(plan: Plan, done: Collection[str]) -> str:
    jobs = [
        {
            "key": j.key,
            "stage": j.config.stage,
            "backbone": j.config.backbone,
            "tasks": list(j.config.tasks),
            "done": j.key in done,
            "budget": _budget_json(j.config),
            "config": j.config.identity(),
        }
        for j in plan.jobs
    ]
    trials = [
        {
            "key": t.key,
            "tasks": list(t.config.tasks),
            "backbone": t.config.backbone,
            "pretrain": t.pretrain,
            "pretrain_key": t.pretrain_key,
            "weighting": t.config.weighting,
            "loss_weights": dict(t.config.loss_weights),
            "seed": t.config.seed,
            "label": t.config.label,
            "done": t.key in done,
            "budget": _budget_json(t.config),
            "config": t.config.identity(),
        }
        for t in plan.trials
    ]
    counts = {
        "main": len(plan.main),
        "reference": len(plan.reference),
        "pretrain_jobs": len(plan.jobs),
        "cells": plan.cells,
        "excluded": plan.excluded,
        "included": plan.included,
        "collapsed": dict(plan.collapsed),
        "done": sum(1 for t in plan.trials if t.key in done),
        "training_images": total_images(plan)[0],
        "unsized_runs": total_images(plan)[1],
    }
    doc = {"sweep": plan.spec.name, "pretrain_jobs": jobs, "trials": trials, "counts": counts}
    if plan.spec.search is not None:  # the trials are the final runs: docs/tuning.md
        doc["search"] = search_json(plan, done)
        for trial in trials:
            trial["done"] = AFTER_SEARCH
    return json.dumps(doc, indent=2)


def total_images(plan: Plan) -> tuple[int, int]:
    """Images the sweep trains on (jobs included), and how many runs the spec cannot size
    (their data must be read first). A step's images count once per source: gender and
    smile share CelebA's."""
    total = unknown = 0
    for config in [t.config for t in plan.trials] + [j.config for j in plan.jobs]:
        budget = planned_budget(config)
        if budget.steps is None:
            unknown += 1
            continue
        total += sum(budget.images[ts[0]] or 0 for ts in config.source_groups().values())
    return total, unknown


def _budget_cells(config: TrialConfig) -> list[object]:
    budget = planned_budget(config)
    images = ", ".join(f"{t} {'?' if n is None else f'{n:,}'}" for t, n in budget.images.items())
    return ["?" if budget.steps is None else f"{budget.steps:,}", images]


def _plan_table(plan: Plan, done: Collection[str]) -> str:
    out = []
    if plan.jobs:
        rows = [
            [
                j.key,
                j.config.stage,
                j.config.backbone,
                tasks_tag(j.config.tasks),
                *_budget_cells(j.config),
                sum(t.pretrain_key == j.key for t in plan.trials),
                _status(j.key, done),
            ]
            for j in plan.jobs
        ]
        heads = ["key", "stage", "backbone", "tasks", "steps", "images", "used by", "status"]
        out += ["Pretraining jobs", tabulate(rows, heads, tablefmt="simple"), ""]
    if plan.spec.search is not None:  # the trials are the final runs: docs/tuning.md
        out += search_table(plan, done)
    status = (
        (lambda _: AFTER_SEARCH) if plan.spec.search is not None else (lambda k: _status(k, done))
    )
    rows = [
        [
            t.key,
            tasks_tag(t.config.tasks),
            t.config.backbone,
            t.pretrain,
            weights_text(t),
            t.config.seed,
            t.config.label or "",
            *_budget_cells(t.config),
            status(t.key),
        ]
        for t in plan.trials
    ]
    heads = ["key", "tasks", "backbone", "pretrain", "weights", "seed", "reference"]
    heads += ["steps", "images", "status"]
    out += ["Trials", tabulate(rows, heads, tablefmt="simple"), ""]
    rules = sorted({c.train.budget.rule for c in [t.config for t in plan.trials]})
    total, unknown = total_images(plan)
    unsized = f", plus {unknown} run(s) sized when their data are read" if unknown else ""
    out.append(f"budget: {', '.join(rules)}; training images over the sweep: {total:,}{unsized}")
    line = summary(plan)
    if done:
        n_done = sum(1 for t in plan.trials if t.key in done)
        line += f"; {n_done} already done, {len(plan.trials) - n_done} to run"
    out.append(line)
    return "\n".join(out)


def _status(key: str, done: Collection[str]) -> str:
    return "done" if key in done else "pending"
