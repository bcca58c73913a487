"""The bench's sqlite stores: a real spec's sweep of N runs, logged fast and checked on reuse.

The sweep is the expansion of SPEC with as many seeds as N needs (the last seed partly
logged), so every run has a real trial key, the params the runner logs (the identity,
flattened) and the runner's tags and run name; about 2% are FAILED, and 20 runs of another
tool share the experiment. `--runs N` builds exactly N sweep runs (pretraining jobs and
trials) or is refused with the range this grid can build.

Two ways to log the same runs (`sweep_runs` yields them, seeded):
- `log_with_client`: MlflowClient.create_run, log_batch and set_terminated per run, as a
  sweep does (about 45 ms per run on 2 cores);
- `insert_bulk`: the same rows written into MLflow's own tables (its SQLAlchemy models'
  tables, in batches of a few thousand runs, one transaction each); about 100x faster.
  tests/test_runs_read.py pins that both give the same rows and the same report.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SEEDS = 1000  # the largest grid the bench builds: 1000 seeds (200,004 runs)
OTHER_TOOL_RUNS = 20
EXPERIMENT = "bench"
SWEEP = "bench"
CLOCK0 = 1_700_000_000_000  # ms: the first run's start; each run starts 1 s later
SPEC = """
name: bench
data:
  age: {kind: chalearn, root: /data/chalearn}
  gender: {kind: celeba, root: /data/celeba}
  emotion: {kind: fer2013, root: /data/fer2013}
  smile: {kind: celeba, root: /data/celeba}
train: {epochs: 30, batch_size: 128, image_size: 112}
stages:
  imdb_wiki:
    source: {kind: imdb_wiki, root: /data/imdb_wiki}
    tasks: [age, gender]
    epochs: 10
grid:
  tasks: [powerset]
  backbone: [resnet18, resnet50, alexnet]
  pretrain: [none, imdb_wiki]
  weighting: [fixed, uncertainty]
  weights: [[1, 1, 1, 1], [1, 0.1, 1, 1]]
  seed: SEEDS
  include:
    - {label: DEX, backbone: dex, tasks: [age], pretrain: imdb_wiki}
    - {label: SSR-Net, backbone: ssrnet, tasks: [age], pretrain: none}
"""
# What a store's name and its experiment tag commit to: the spec and this logging scheme.
VERSION = hashlib.sha256((SPEC + "runs-v1").encode()).hexdigest()[:8]
RUNS_TAG = "bench.runs"  # experiment tags a built store carries, checked on reuse
VERSION_TAG = "bench.version"


@dataclass(frozen=True)
class RunRows:
    """One sweep run as MLflow stores it."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    status: str
    start: int  # ms


def refuse(message: str) -> None:
    """Exit 2 with a one-line message (a --runs or a store the bench cannot use)."""
    print(f"bench_report: {message}", file=sys.stderr)
    raise SystemExit(2)


def store_name(n_runs: int) -> str:
    """The file name of a store holding `n_runs` sweep runs of this bench's grid."""
    return f"bench-{n_runs}runs-{VERSION}.db"


def _expand(seeds: int) -> Any:
    from mtl_sweep.expand import expand
    from mtl_sweep.spec.load import parse_spec

    seed_list = "[" + ", ".join(str(s) for s in range(seeds)) + "]"
    return expand(parse_spec(SPEC.replace("SEEDS", seed_list), "bench.yaml"), "bench.yaml")


def job_plan() -> Any:
    """The grid's plan with one seed: its pretraining jobs are every seed's."""
    return _expand(1)


def grid_shape() -> tuple[int, int]:
    """(pretraining jobs, trials per seed) of this bench's grid."""
    one = job_plan()
    return len(one.jobs), len(one.trials)


def check_runs(n_runs: int) -> tuple[int, int]:
    """(pretraining jobs, trials per seed); exits 2 naming the range `n_runs` is outside."""
    jobs, per_seed = grid_shape()
    lo, hi = jobs + 1, jobs + per_seed * MAX_SEEDS
    if not lo <= n_runs <= hi:
        refuse(
            f"--runs {n_runs}: this grid builds {lo} to {hi} runs ({jobs} pretraining jobs "
            f"+ {per_seed} trials per seed, up to {MAX_SEEDS} seeds)"
        )
    return jobs, per_seed


def plan_for(n_runs: int) -> Any:
    """The plan to log exactly `n_runs` runs of: its jobs, then its trials seed by seed up
    to `n_runs` (a partly logged last seed looks like a sweep still running); exits 2
    naming the range this grid builds."""
    jobs, per_seed = check_runs(n_runs)
    plan = _expand(math.ceil((n_runs - jobs) / per_seed))
    plan.trials = sorted(plan.trials, key=lambda t: t.config.seed)[: n_runs - jobs]
    return plan


def sweep_runs(n_runs: int, parent: str) -> Iterator[RunRows]:
    """The runs of an `n_runs` sweep under the sweep run `parent`, jobs first (seeded), with
    the run names and tags the runner gives them."""
    from mtl_core import contract as C
    from mtl_core.tasks import PRIMARY_METRIC
    from mtl_sweep.run.requests import RunContext, job_request, trial_request

    plan = plan_for(n_runs)
    ctx = RunContext(plan.spec, "sqlite:///bench.db", "1", parent, Path("/bench-cache"))
    requests = [job_request(j, ctx) for j in plan.jobs]
    requests += [trial_request(t, ctx) for t in plan.trials]
    rng = random.Random(0)
    base = {"age": 6.0, "gender": 0.9, "emotion": 0.6, "smile": 0.88}
    clock = CLOCK0
    for request in requests:
        config = request.config
        failed = not config.is_pretrain and rng.random() < 0.02
        metrics: dict[str, float] = {}
        if not failed:
            for t in config.tasks:
                value = base[t] * (1 + rng.gauss(0, 0.02))
                metrics[C.TEST + PRIMARY_METRIC[t].name] = value
            if "age" in config.tasks:
                metrics[C.TEST + "age_eps"] = rng.uniform(0.3, 0.4)
        params = C.flatten_params(config.identity())
        status = "FAILED" if failed else "FINISHED"
        yield RunRows(request.name, dict(request.tags), params, metrics, status, clock)
        clock += 1000


def create_store(uri: str, n_runs: int) -> tuple[Any, str, str]:
    """A new store with the bench's experiment and sweep run: (client, exp id, sweep id)."""
    from mlflow import MlflowClient

    from mtl_core import contract as C

    client = MlflowClient(tracking_uri=uri)
    tags = {RUNS_TAG: str(n_runs), VERSION_TAG: VERSION}
    exp = client.create_experiment(EXPERIMENT, tags=tags)
    sweep_tags = {C.KIND: C.KIND_SWEEP, C.SWEEP: SWEEP}
    sweep = client.create_run(exp, run_name=SWEEP, tags=sweep_tags, start_time=CLOCK0 - 1000)
    return client, exp, sweep.info.run_id


def log_other_tool(client: Any, exp: str) -> None:
    """Runs of another tool in the same experiment: the report never fetches them."""
    from mlflow.entities import Metric

    for i in range(OTHER_TOOL_RUNS):
        other = client.create_run(exp, tags={"tool": "other"}, run_name=f"other-{i}")
        client.log_batch(other.info.run_id, metrics=[Metric("test/age_mae", 1.0, CLOCK0, 0)])
        client.set_terminated(other.info.run_id, end_time=CLOCK0 + 500)


def log_with_client(client: Any, exp: str, runs: Iterator[RunRows]) -> int:
    """Log `runs` one by one through MlflowClient, as a sweep does; returns how many."""
    from mlflow.entities import Metric, Param

    n = 0
    for run in runs:
        run_id = client.create_run(
            exp, start_time=run.start, tags=run.tags, run_name=run.name
        ).info.run_id
        metrics = [Metric(k, v, run.start, 0) for k, v in run.metrics.items()]
        params = [Param(k, v) for k, v in run.params.items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id, run.status, end_time=run.start + 500)
        n += 1
    return n


def insert_bulk(uri: str, exp: str, runs: Iterator[RunRows], batch: int = 5000) -> int:
    """Write `runs` straight into MLflow's tables, the rows `log_with_client` would write
    (create_run, log_batch, set_terminated); returns how many."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        location = conn.execute(
            sa.text("select artifact_location from experiments where experiment_id = :e"),
            {"e": int(exp)},
        ).scalar_one()
    tables = [t.__table__ for t in (SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric)]
    rows: list[list[dict[str, Any]]] = [[] for _ in tables]
    n = 0

    def flush() -> None:
        with engine.begin() as conn:
            for table, chunk in zip(tables, rows, strict=True):
                if chunk:
                    conn.execute(table.insert(), chunk)
                chunk.clear()

    for run in runs:
        for chunk, new in zip(rows, _rows(run, int(exp), location), strict=True):
            chunk.extend(new)
        n += 1
        if n % batch == 0:
            flush()
    flush()
    engine.dispose()
    return n


def _rows(run: RunRows, exp: int, location: str) -> list[list[dict[str, Any]]]:
    """The rows of `run` in runs, tags, params, metrics and latest_metrics, as MLflow's
    create_run, log_batch and set_terminated write them."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    run_id = uuid.uuid4().hex
    head = {
        "run_uuid": run_id,
        "name": run.name,
        "source_type": "UNKNOWN",
        "source_name": "",
        "entry_point_name": "",
        "user_id": "unknown",
        "status": run.status,
        "start_time": run.start,
        "end_time": run.start + 500,
        "deleted_time": None,
        "source_version": "",
        "lifecycle_stage": "active",
        "artifact_uri": f"{location}/{run_id}/artifacts",
        "experiment_id": exp,
    }
    tags = {**run.tags, MLFLOW_RUN_NAME: run.name}
    metrics = [
        {
            "key": k,
            "value": v,
            "timestamp": run.start,
            "step": 0,
            "is_nan": False,
            "run_uuid": run_id,
        }
        for k, v in run.metrics.items()
    ]
    return [
        [head],
        [{"key": k, "value": v, "run_uuid": run_id} for k, v in tags.items()],
        [{"key": k, "value": v, "run_uuid": run_id} for k, v in run.params.items()],
        metrics,
        [dict(m) for m in metrics],  # latest_metrics: each metric has one step
    ]


def check_store(uri: str, n_runs: int) -> None:
    """Exit 2 unless the store at `uri` holds this bench's `n_runs` sweep runs."""
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        tags = dict(
            conn.execute(
                sa.text(
                    "select t.key, t.value from experiment_tags t join experiments e "
                    "on e.experiment_id = t.experiment_id where e.name = :n"
                ),
                {"n": EXPERIMENT},
            ).all()
        )
        found = conn.execute(
            sa.text(
                "select count(*) from tags where key = 'mtl_sweep.kind' "
                "and value in ('trial', 'pretrain')"
            )
        ).scalar_one()
    engine.dispose()
    want = {RUNS_TAG: str(n_runs), VERSION_TAG: VERSION}
    if found != n_runs or any(tags.get(k) != v for k, v in want.items()):
        refuse(
            f"{uri}: holds {found} sweep runs (tags {tags}), not the {n_runs} of bench "
            f"version {VERSION}; delete it or pass another --store"
        )


def build(db: Path, n_runs: int) -> int:
    """Build the store file `db` with `n_runs` sweep runs; returns the runs logged."""
    uri = f"sqlite:///{db}"
    client, exp, sweep_id = create_store(uri, n_runs)
    n = insert_bulk(uri, exp, sweep_runs(n_runs, sweep_id))
    log_other_tool(client, exp)
    client.set_terminated(sweep_id, end_time=CLOCK0 + 1000 * (n_runs + 1))
    return n
