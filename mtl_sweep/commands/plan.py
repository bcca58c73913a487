"""Rendering an expanded plan for `mtl-sweep plan`: jobs, trials, then the counts."""

from __future__ import annotations

import json
from collections.abc import Collection

from tabulate import tabulate

from mtl_core.tasks import tasks_tag
from mtl_sweep.expand import Plan, Trial


def weights_text(trial: Trial) -> str:
    """`fixed` weights over the trial's tasks in task order, or the strategy's name."""
    if trial.weighting != "fixed":
        return trial.weighting
    return ", ".join(f"{w:g}" for w in trial.loss_weights.values())


def summary(plan: Plan) -> str:
    """One line of counts: trials, reference trials, jobs, and why cells collapsed."""
    parts = [f"{len(plan.main)} trials in the main grid ({plan.cells} cells"]
    if plan.excluded:
        parts.append(f", {plan.excluded} excluded")
    if plan.included:
        parts.append(f", {plan.included} added by include")
    n_collapsed = sum(plan.collapsed.values())
    if n_collapsed:
        why = "; ".join(f"{n} {reason}" for reason, n in plan.collapsed.most_common())
        parts.append(f", {n_collapsed} collapsed: {why}")
    parts.append(")")
    parts.append(f" + {len(plan.reference)} reference-model trials")
    parts.append(f"; {len(plan.jobs)} pretraining job{'' if len(plan.jobs) == 1 else 's'}")
    return "".join(parts)


def render_plan(plan: Plan, fmt: str = "table", done: Collection[str] = ()) -> str:
    """The plan as a text table or as JSON; keys in `done` are marked as already run."""
    if fmt == "json":
        return json.dumps(
            {
                "sweep": plan.spec.name,
                "pretrain_jobs": [
                    {
                        "key": j.key,
                        "stage": j.stage,
                        "backbone": j.backbone,
                        "tasks": list(j.tasks),
                        "done": j.key in done,
                        "config": j.config.identity(),
                    }
                    for j in plan.jobs
                ],
                "trials": [
                    {
                        "key": t.key,
                        "tasks": list(t.tasks),
                        "backbone": t.backbone,
                        "pretrain": t.pretrain,
                        "pretrain_key": t.pretrain_key,
                        "weighting": t.weighting,
                        "loss_weights": t.loss_weights,
                        "seed": t.seed,
                        "label": t.label,
                        "done": t.key in done,
                        "config": t.config.identity(),
                    }
                    for t in plan.trials
                ],
                "counts": {
                    "main": len(plan.main),
                    "reference": len(plan.reference),
                    "pretrain_jobs": len(plan.jobs),
                    "cells": plan.cells,
                    "excluded": plan.excluded,
                    "included": plan.included,
                    "collapsed": dict(plan.collapsed),
                    "done": sum(1 for t in plan.trials if t.key in done),
                },
            },
            indent=2,
        )
    out = []
    if plan.jobs:
        rows = [
            [
                j.key,
                j.stage,
                j.backbone,
                tasks_tag(j.tasks),
                j.config.train.epochs,
                sum(t.pretrain_key == j.key for t in plan.trials),
                _status(j.key, done),
            ]
            for j in plan.jobs
        ]
        out.append("Pretraining jobs")
        out.append(
            tabulate(
                rows,
                ["key", "stage", "backbone", "tasks", "epochs", "used by", "status"],
                tablefmt="simple",
            )
        )
        out.append("")
    rows = [
        [
            t.key,
            tasks_tag(t.tasks),
            t.backbone,
            t.pretrain,
            weights_text(t),
            t.seed,
            t.label or "",
            _status(t.key, done),
        ]
        for t in plan.trials
    ]
    out.append("Trials")
    out.append(
        tabulate(
            rows,
            ["key", "tasks", "backbone", "pretrain", "weights", "seed", "reference", "status"],
            tablefmt="simple",
        )
    )
    out.append("")
    line = summary(plan)
    if done:
        n_done = sum(1 for t in plan.trials if t.key in done)
        line += f"; {n_done} already done, {len(plan.trials) - n_done} to run"
    out.append(line)
    return "\n".join(out)


def _status(key: str, done: Collection[str]) -> str:
    return "done" if key in done else "pending"
