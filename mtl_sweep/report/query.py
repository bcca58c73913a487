"""Reading one sweep's trial and pretraining runs out of MLflow into a pandas frame.

Only the run contract (`mtl_core.contract`) is read: runs without its tags (another
tool's runs in the same experiment) are never fetched or are dropped here.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from mtl_core import contract as C
from mtl_core.errors import UserError
from mtl_core.tasks import TASKS, parse_tasks_tag
from mtl_sweep.store.uri import store_exists

if TYPE_CHECKING:
    from mlflow.entities import Run

    from mtl_sweep.store.tracker import Tracker

# Final metrics the report reads, in column order: each task's headline metric, then extras.
METRIC_KEYS: tuple[str, ...] = tuple(C.TEST_METRICS)
# Params that identify what a row trained, apart from its seed: the resolved train settings
# and data sources (`source.*` on pretraining jobs). Anything else the runner logs is ignored.
CONFIG_PREFIXES: tuple[str, ...] = ("train.", "data.", "source.", "stage")
COLUMNS: tuple[str, ...] = (
    "run_id",
    "status",
    "start_time",  # ms since the epoch
    "kind",  # trial | pretrain
    "key",  # trial key (the run id where the tag is missing)
    "tasks",  # tuple of tasks in canonical order
    "backbone",
    "pretrain",  # none, or the stage name
    "weighting",
    "weights",  # tuple of loss weights over `tasks`, or None when not logged
    "seed",  # int, or None when not tagged
    "label",  # reference-model label, or None
    "superseded",  # FINISHED but replaced by a --rerun
    "datasets",  # dict task -> source kind, from data.<task>.kind / source.kind params
    "config",  # dict of the CONFIG_PREFIXES params
    "affinity",  # dict (source, target) -> affinity_mean/ metric; empty without train.affinity
    "affinity_params",  # what its lookahead stepped: trunk (also when not logged) or last_shared
    "budget",  # dict budget/* metric -> value: the steps and images the trial trained with
    "cell",  # tuned sweeps: the cell (mtl_sweep.cell), or None
    "tuned_from",  # tuned sweeps: the search run a final run retrains, or None
    *METRIC_KEYS,
)


@dataclass(frozen=True)
class SweepRuns:
    """A sweep's trial and pretraining runs (every status), one row per run."""

    uri: str
    experiment: str
    sweep: str
    runs: pd.DataFrame  # COLUMNS


def load_sweep(uri: str, experiment: str | None = None, sweep: str | None = None) -> SweepRuns:
    """Find the sweep (default: the most recent in the store) and read its runs.

    Raises UserError when a sqlite store does not exist, or when the experiment or sweep
    is unknown (the message lists the known ones).
    """
    if not store_exists(uri):
        raise UserError(
            f"no MLflow store at {uri}; run `mtl-sweep run SPEC` first, or pass "
            "--tracking-uri (or set MLFLOW_TRACKING_URI)"
        )
    from mtl_sweep.store.tracker import Tracker

    tracker = Tracker(uri)
    exp_id, exp_name, sweep_name = _find_sweep(tracker, experiment, sweep)
    # The tag filter runs in the store, so other tools' runs are never fetched.
    filt = f"tags.`{C.SWEEP}` = '{sweep_name}'"
    with _gc_paused():
        records = [
            _record(run)
            for run in tracker.runs([exp_id], filt)
            if run.data.tags.get(C.KIND) in (C.KIND_TRIAL, C.KIND_PRETRAIN)
        ]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return SweepRuns(uri=uri, experiment=exp_name, sweep=sweep_name, runs=frame)


@contextmanager
def _gc_paused() -> Iterator[None]:
    # search_runs builds hundreds of thousands of short-lived ORM objects (one per param),
    # which trigger repeated full collections: pausing GC makes 2,000 runs ~3x faster.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _find_sweep(
    tracker: Tracker, experiment: str | None, sweep: str | None
) -> tuple[str, str, str]:
    """(experiment id, experiment name, sweep name) of the sweep to report."""
    client = tracker.client
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if experiment is not None:
        ids = [i for i, name in experiments.items() if name == experiment]
        if not ids:
            known = ", ".join(sorted(experiments.values())) or "none"
            raise UserError(f"unknown experiment {experiment!r} in {tracker.uri}; known: {known}")
        where = f"experiment {experiment!r}"
    else:
        ids = list(experiments)
        where = tracker.uri
    if sweep is not None and "'" in sweep:
        raise UserError(f"sweep name {sweep!r} may not contain a quote")
    filt = f"tags.`{C.KIND}` = '{C.KIND_SWEEP}'"
    sweep_runs = list(tracker.runs(ids, filt)) if ids else []
    known_sweeps = sorted({r.data.tags.get(C.SWEEP, "") for r in sweep_runs} - {""})
    if sweep is not None:
        sweep_runs = [r for r in sweep_runs if r.data.tags.get(C.SWEEP) == sweep]
        if not sweep_runs:
            known = ", ".join(known_sweeps) or "none"
            raise UserError(f"unknown sweep {sweep!r} in {where}; known: {known}")
    elif not sweep_runs:
        raise UserError(f"no mtl-sweep sweep in {where}; run `mtl-sweep run SPEC` first")
    # A re-run reuses its sweep run (and its start time) and terminates it again at the end,
    # so recency is the later of the two.
    latest = max(sweep_runs, key=lambda r: max(r.info.start_time or 0, r.info.end_time or 0))
    exp_id = latest.info.experiment_id
    return exp_id, experiments[exp_id], latest.data.tags[C.SWEEP]


def _record(run: Run) -> dict[str, Any]:
    """One run as a row of COLUMNS."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    tasks = _tasks(tags.get(C.TASKS) or tags.get(C.TASKS_MISNAMED, ""))
    record: dict[str, Any] = {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "start_time": run.info.start_time or 0,
        "kind": tags[C.KIND],
        "key": tags.get(C.KEY) or run.info.run_id,
        "tasks": tasks,
        "backbone": tags.get(C.BACKBONE, "?"),
        "pretrain": tags.get(C.PRETRAIN) or params.get("stage") or "none",
        "weighting": tags.get(C.WEIGHTING, "fixed"),
        "weights": _weights(params, tasks),
        "seed": _int_or_none(tags.get(C.SEED)),
        "label": tags.get(C.LABEL) or None,
        "superseded": C.SUPERSEDED_BY in tags,
        "datasets": _datasets(params, tasks),
        "config": {k: v for k, v in params.items() if k.startswith(CONFIG_PREFIXES)},
        "affinity": _affinity(metrics),
        "affinity_params": params.get("run.affinity_params", "trunk"),
        "budget": {k: v for k, v in metrics.items() if k.startswith("budget/")},
        "cell": tags.get(C.CELL),
        "tuned_from": tags.get(C.TUNED_FROM),
    }
    record.update({k: metrics.get(k, float("nan")) for k in METRIC_KEYS})
    return record


def _affinity(metrics: Mapping[str, float]) -> dict[tuple[str, str], float]:
    out = {}
    for name, value in metrics.items():
        pair = C.parse_affinity_metric(name, C.AFFINITY_MEAN)
        if pair is not None:
            out[pair] = value
    return out


def _tasks(tag: str) -> tuple[str, ...]:
    try:
        return parse_tasks_tag(tag)
    except ValueError:
        # A task this version does not know: keep the run out of every column.
        return tuple(t for t in tag.split("+") if t in TASKS)


def _weights(params: Mapping[str, str], tasks: tuple[str, ...]) -> tuple[float, ...] | None:
    try:
        return tuple(float(params[f"loss_weight.{t}"]) for t in tasks)
    except (KeyError, ValueError):
        return None  # a run logged without params


def _datasets(params: Mapping[str, str], tasks: tuple[str, ...]) -> dict[str, str]:
    if "source.kind" in params:  # a pretraining job reads one source for all its tasks
        return dict.fromkeys(tasks, params["source.kind"])
    return {t: params[f"data.{t}.kind"] for t in tasks if f"data.{t}.kind" in params}


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def config_signature(config: Mapping[str, str]) -> str:
    """A stable string for grouping runs whose configs agree apart from the seed."""
    return json.dumps(dict(sorted(config.items())), separators=(",", ":"))
