"""Reading one sweep's trial and pretraining runs out of MLflow into a pandas frame.

Only the run contract (`mtl_core.contract`) is read: runs without its tags (another
tool's runs in the same experiment) are never fetched or are dropped here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from mtl_core import contract as C
from mtl_core.errors import UserError
from mtl_core.tasks import TASKS, parse_tasks_tag
from mtl_sweep.store import runs_client, runs_read, runs_sql, snapshot
from mtl_sweep.store.runs_read import Reader, RunData, Wanted, open_reader
from mtl_sweep.store.uri import store_exists

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
    "trivial",  # dict trivial/* metric -> value: the trivial predictor's (absent on older runs)
    *METRIC_KEYS,
)


@dataclass(frozen=True)
class SweepRuns:
    """A sweep's trial and pretraining runs (every status), one row per run."""

    uri: str
    experiment: str
    sweep: str
    runs: pd.DataFrame  # COLUMNS


class RunConfig(dict):
    """A run's CONFIG_PREFIXES params. Runs with the same params share one object (the seeds
    of a cell), which keeps its signature once computed (see `config_signature`)."""

    __slots__ = ("signature",)


# What the report reads of each run; the rest of what the runner logs is never fetched.
WANTED = Wanted(
    tags=(
        C.KIND,
        C.KEY,
        C.TASKS,
        C.TASKS_MISNAMED,
        C.BACKBONE,
        C.PRETRAIN,
        C.WEIGHTING,
        C.SEED,
        C.LABEL,
        C.SUPERSEDED_BY,
        C.CELL,  # tuned sweeps: a final run's cell and the search run it retrains
        C.TUNED_FROM,
    ),
    param_prefixes=(*CONFIG_PREFIXES, "loss_weight.", "run.affinity_params"),
    metric_prefixes=(*METRIC_KEYS, C.AFFINITY_MEAN, "budget/", C.TRIVIAL),
)


def load_sweep(uri: str, experiment: str | None = None, sweep: str | None = None) -> SweepRuns:
    """Find the sweep (default: the most recent in the store) and read its runs.

    A SQL store at a known schema is read with plain queries and its result kept in the
    cache folder until the store changes (see store/runs_read.py, store/snapshot.py);
    other stores are read through MlflowClient. Raises UserError when a sqlite store does
    not exist, or when the experiment or sweep is unknown (the message lists the known ones).
    """
    if not store_exists(uri):
        raise UserError(
            f"no MLflow store at {uri}; run `mtl-sweep run SPEC` first, or pass "
            "--tracking-uri (or set MLFLOW_TRACKING_URI)"
        )
    reader = open_reader(uri)
    # The cached frame was made by this code: a change to it (or to the reader) drops it.
    code = b"".join(
        Path(f).read_bytes()
        for f in (__file__, runs_read.__file__, runs_sql.__file__, runs_client.__file__)
    )
    name = (uri, experiment, sweep, hashlib.sha256(code).hexdigest())
    return snapshot.cached(reader, name, lambda: _read(reader, experiment, sweep))


def _read(reader: Reader, experiment: str | None, sweep: str | None) -> SweepRuns:
    exp_id, exp_name, sweep_name = _find_sweep(reader, experiment, sweep)
    # The tag filters run in the store, so other tools' runs are never fetched.
    kinds = (C.KIND_TRIAL, C.KIND_PRETRAIN)
    runs = reader.runs([exp_id], {C.SWEEP: (sweep_name,), C.KIND: kinds}, WANTED)
    configs: dict[tuple[tuple[str, str], ...], RunConfig] = {}
    records = [_record(run, configs) for run in runs]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return SweepRuns(uri=reader.uri, experiment=exp_name, sweep=sweep_name, runs=frame)


def _find_sweep(reader: Reader, experiment: str | None, sweep: str | None) -> tuple[str, str, str]:
    """(experiment id, experiment name, sweep name) of the sweep to report."""
    experiments = reader.experiments()
    if experiment is not None:
        ids = [i for i, name in experiments.items() if name == experiment]
        if not ids:
            known = ", ".join(sorted(experiments.values())) or "none"
            raise UserError(f"unknown experiment {experiment!r} in {reader.uri}; known: {known}")
        where = f"experiment {experiment!r}"
    else:
        ids = list(experiments)
        where = reader.uri
    if sweep is not None and "'" in sweep:
        raise UserError(f"sweep name {sweep!r} may not contain a quote")
    only = Wanted(tags=(C.SWEEP,), param_prefixes=(), metric_prefixes=())
    sweep_runs = reader.runs(ids, {C.KIND: (C.KIND_SWEEP,)}, only)
    known_sweeps = sorted({r.tags.get(C.SWEEP, "") for r in sweep_runs} - {""})
    if sweep is not None:
        sweep_runs = [r for r in sweep_runs if r.tags.get(C.SWEEP) == sweep]
        if not sweep_runs:
            known = ", ".join(known_sweeps) or "none"
            raise UserError(f"unknown sweep {sweep!r} in {where}; known: {known}")
    elif not sweep_runs:
        raise UserError(f"no mtl-sweep sweep in {where}; run `mtl-sweep run SPEC` first")
    # A re-run reuses its sweep run (and its start time) and terminates it again at the end,
    # so recency is the later of the two.
    latest = max(sweep_runs, key=lambda r: max(r.start_time or 0, r.end_time or 0))
    exp_id = latest.experiment_id
    return exp_id, experiments[exp_id], latest.tags[C.SWEEP]


def _record(run: RunData, configs: dict[tuple[tuple[str, str], ...], RunConfig]) -> dict[str, Any]:
    """One run as a row of COLUMNS; `configs` (params, or config items -> config) shares
    equal configs between runs."""
    tags, params, metrics = run.tags, run.params, run.metrics
    tasks = _tasks(tags.get(C.TASKS) or tags.get(C.TASKS_MISNAMED, ""))
    # Runs logged alike list their params alike: look the config up by them as they come,
    # and build (and share) it only for a list not seen yet.
    logged = tuple(params.items())
    shared = configs.get(logged)
    if shared is None:
        config = tuple(sorted((k, v) for k, v in logged if k.startswith(CONFIG_PREFIXES)))
        shared = configs[logged] = configs.setdefault(config, RunConfig(config))
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "status": run.status,
        "start_time": run.start_time or 0,
        "kind": tags[C.KIND],
        "key": tags.get(C.KEY) or run.run_id,
        "tasks": tasks,
        "backbone": tags.get(C.BACKBONE, "?"),
        "pretrain": tags.get(C.PRETRAIN) or params.get("stage") or "none",
        "weighting": tags.get(C.WEIGHTING, "fixed"),
        "weights": _weights(params, tasks),
        "seed": _int_or_none(tags.get(C.SEED)),
        "label": tags.get(C.LABEL) or None,
        "superseded": C.SUPERSEDED_BY in tags,
        "datasets": _datasets(params, tasks),
        "config": shared,
        "affinity": _affinity(metrics),
        "affinity_params": params.get("run.affinity_params", "trunk"),
        "budget": {k: v for k, v in metrics.items() if k.startswith("budget/")},
        "cell": tags.get(C.CELL),
        "tuned_from": tags.get(C.TUNED_FROM),
        "trivial": {k: v for k, v in metrics.items() if k.startswith(C.TRIVIAL)},
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


@lru_cache(maxsize=1024)  # a sweep has a few dozen task sets and many runs of each
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
    signature = getattr(config, "signature", None)
    if signature is None:
        signature = json.dumps(dict(sorted(config.items())), separators=(",", ":"))
        if isinstance(config, RunConfig):
            config.signature = signature  # shared by every run with this config
    return signature
