"""A tuned sweep's search, read back from MLflow: per cell, its samples, its winner, the
steps it spent, chosen values at the edge of their range, and comparisons whose arms'
search budgets differ by more than the tolerance (docs/tuning.md).

Pure functions over run records build the model's `Tuning`; `load_tuning` reads them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from mtl_core import contract as C
from mtl_core.contract import row_name
from mtl_core.tasks import parse_tasks_tag
from mtl_sweep.report.model.tuning import BUDGET_TOLERANCE, OUTER, SearchPoint, TunedCell, Tuning
from mtl_sweep.report.query import SweepRuns
from mtl_sweep.store.tracker import Tracker


def load_tuning(runs: SweepRuns) -> Tuning | None:
    """The sweep's search runs and its spec's search block; None for an untuned sweep."""
    tracker = Tracker(runs.uri)
    exp_id = tracker.experiment_id(runs.experiment)
    if exp_id is None:
        return None
    filt = (
        f"attributes.status = 'FINISHED' and tags.`{C.KIND}` = '{C.KIND_SEARCH}' "
        f"and tags.`{C.SWEEP}` = '{runs.sweep}'"
    )
    records = [_record(r) for r in tracker.runs([exp_id], filt)]
    if not records:
        return None
    return build_tuning(records, _search_block(tracker, exp_id, runs.sweep), runs.runs)


def _record(run: Any) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    stopped = tags.get(C.STOPPED_EARLY) == "true"
    objective = metrics.get(C.SEARCH_OBJECTIVE if stopped else C.SEARCH_BEST, math.nan)
    return {
        "cell": tags.get(C.CELL, ""),
        "index": int(tags.get(C.SAMPLE, "0")),
        "values": json.loads(tags.get(C.SEARCH_VALUES, "{}")),
        "objective": float(objective),
        "steps": int(metrics.get(C.SEARCH_STEPS, 0)),
        "stopped": stopped,
        "run_id": run.info.run_id,
        "tasks": parse_tasks_tag(tags.get(C.TASKS, "")),
        "backbone": tags.get(C.BACKBONE, "?"),
        "pretrain": tags.get(C.PRETRAIN, "none"),
        "weighting": tags.get(C.WEIGHTING, "fixed"),
        "start_time": run.info.start_time or 0,
        "superseded": C.SUPERSEDED_BY in tags,
    }


def _search_block(tracker: Any, exp_id: str, sweep: str) -> dict[str, Any]:
    """The search block of the spec the sweep run last logged ({} when it has none)."""
    import os

    import yaml

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a report, no bar
    filt = f"tags.`{C.KIND}` = '{C.KIND_SWEEP}' and tags.`{C.SWEEP}` = '{sweep}'"
    for run in tracker.runs([exp_id], filt):
        try:
            text = tracker.client.download_artifacts(run.info.run_id, C.SPEC_ARTIFACT)
            with open(text, encoding="utf-8") as fh:
                return (yaml.safe_load(fh) or {}).get("search") or {}
        except Exception:  # an older sweep run without its spec: no ranges to check
            continue
    return {}


def build_tuning(
    records: Iterable[Mapping[str, Any]], search: Mapping[str, Any], finals: pd.DataFrame
) -> Tuning:
    """The model's `Tuning` from search-run records, the spec's search block and the
    trial frame (its `cell` and `tuned_from` columns name each cell's winner)."""
    by_cell: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (r["cell"], r["index"], r["start_time"])):
        if not r["superseded"]:
            by_cell.setdefault(r["cell"], []).append(r)
    # The logged spec holds every field of a distribution, the unused ones null.
    space = {
        k: {kind: args for kind, args in dict(d).items() if args is not None}
        for k, d in (search.get("space") or {}).items()
    }
    chosen_ids = _chosen(finals)
    cells = [_cell(cid, rs, chosen_ids.get(cid), space) for cid, rs in by_cell.items()]
    comparisons = budget_comparisons(cells)
    scheduler = search.get("scheduler") or {}
    return Tuning(
        space=space,
        samples=int(search.get("samples") or max(len(c.points) for c in cells)),
        algorithm=str(search.get("algorithm", "random")),
        scheduler=str(scheduler.get("name", "asha")),
        objective=str(search.get("objective", "relative")),
        cells=cells,
        comparisons=comparisons,
    )


def _chosen(frame: pd.DataFrame) -> dict[str, str]:
    """Cell -> the search run its finished final runs retrain (the most common, if several)."""
    if frame.empty or "tuned_from" not in frame:
        return {}
    ok = frame[frame["status"].eq("FINISHED") & ~frame["superseded"].astype(bool)]
    ok = ok[ok["tuned_from"].notna()]
    out: dict[str, str] = {}
    for cell, group in ok.groupby("cell"):
        out[str(cell)] = Counter(group["tuned_from"]).most_common(1)[0][0]
    return out


def _cell(cid: str, records: list[Mapping[str, Any]], chosen_id: str | None, space) -> TunedCell:
    first = records[0]
    points = [
        SearchPoint(
            r["index"], dict(r["values"]), r["objective"], r["steps"], r["stopped"], r["run_id"]
        )
        for r in records
    ]
    chosen = next((p for p in points if p.run_id == chosen_id), None)
    name = row_name(first["backbone"], first["tasks"])
    if first["pretrain"] != "none":
        name = f"{name} ({first['pretrain']})"
    return TunedCell(
        cell=cid,
        name=name,
        backbone=first["backbone"],
        pretrain=first["pretrain"],
        tasks=tuple(first["tasks"]),
        weighting=first["weighting"],
        points=points,
        chosen=chosen,
        steps=sum(p.steps for p in points),
        edges=edge_warnings(chosen.values, space) if chosen else [],
    )


def edge_warnings(values: Mapping[str, Any], space: Mapping[str, Mapping[str, list]]) -> list[str]:
    """`optimizer.lr = 0.029 lies in the top 10% of [0.0003, 0.03] (log scale)` for each
    chosen value within OUTER of a range's end; choice dimensions have no ends."""
    out = []
    for key, dist in space.items():
        ((kind, args),) = dict(dist).items()
        if kind == "choice" or key not in values:
            continue
        low, high, value = float(args[0]), float(args[1]), float(values[key])
        if kind == "randint":
            high -= 1  # Ray's randint excludes high
        if kind == "loguniform":
            low, high, at = math.log(low), math.log(high), math.log(max(value, 1e-300))
        else:
            at = value
        frac = (at - low) / (high - low) if high > low else 0.5
        if frac < OUTER or frac > 1 - OUTER:
            side = "bottom" if frac < OUTER else "top"
            scale = " (log scale)" if kind == "loguniform" else ""
            out.append(
                f"{key} = {value:.3g} lies in the {side} {OUTER:.0%} of "
                f"[{args[0]}, {args[1]}]{scale}: widen the range"
            )
    return out


def budget_comparisons(cells: list[TunedCell]) -> list[tuple[str, list[str], float]]:
    """Each multi-task cell with the single-task cells of its tasks (same backbone and
    pretraining), and the max/min of their search steps; cells of a comparison past the
    tolerance get it in `flagged`."""
    out = []
    for cell in cells:
        if len(cell.tasks) < 2:
            continue
        singles = [
            c
            for c in cells
            if len(c.tasks) == 1
            and c.tasks[0] in cell.tasks
            and (c.backbone, c.pretrain) == (cell.backbone, cell.pretrain)
        ]
        if not singles:
            continue
        steps = [cell.steps, *(c.steps for c in singles)]
        ratio = max(steps) / min(steps) if min(steps) > 0 else math.inf
        out.append((cell.name, [c.name for c in singles], ratio))
        if ratio > 1 + BUDGET_TOLERANCE:
            for c in (cell, *singles):
                c.flagged.append(cell.name)
    return out


def searched_params(tuning: Tuning) -> list[str]:
    """The MLflow params a search sets (`train.optimizer.lr`; loss weights are not config)."""
    return [f"train.{k}" for k in tuning.space if not k.startswith("weights.")]


def untuned_configs(runs: SweepRuns, tuning: Tuning) -> SweepRuns:
    """The final runs' configs without the searched params: a cell's row and its
    single-task baselines are matched on everything else, as in an untuned sweep (each
    cell's own tuned values are in the tuning table)."""
    frame = runs.runs.copy()
    drop = set(searched_params(tuning))
    tuned = frame["tuned_from"].notna() if "tuned_from" in frame else pd.Series(dtype=bool)
    frame.loc[tuned, "config"] = frame.loc[tuned, "config"].map(
        lambda c: {k: v for k, v in c.items() if k not in drop}
    )
    return replace(runs, runs=frame)
