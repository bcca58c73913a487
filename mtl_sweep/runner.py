"""`mtl-sweep run`: a spec's trials on Ray Tune, tracked in MLflow, idempotently.

Order of work:
1. Load and expand the spec, resolve the tracking URI and cache dir (all absolute), and
   check every data source (prepare.py). Problems exit 2 before MLflow or Ray start;
   synthetic data renders in the background meanwhile, and is ready before any trial.
2. In MLflow: create the experiment once, reuse the sweep's parent run, mark runs a
   dead driver left RUNNING as KILLED, and skip every trial or pretraining job that
   already has a FINISHED run with its key (a pretraining job in any experiment).
3. Ray Tune runs what is left. A searcher hands out pretraining jobs first and
   releases the trials that need a job only when it has finished; trials that need no
   pretraining are not held back. Actors are reused; a failed trial is retried from its
   last checkpoint up to `failure.retries` times.
4. The report is rendered and attached to the sweep run; the exit code is 0 when every
   trial finished and 1 when some failed. The last lines say how to open the runs in
   the MLflow UI (ui_link.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from mtl_sweep import contract as C
from mtl_sweep.cachedir import default_cache_dir
from mtl_sweep.expand import Plan, expand
from mtl_sweep.load import load_spec
from mtl_sweep.payload import RunContext, job_payload, trial_payload
from mtl_sweep.prepare import DataPrep
from mtl_sweep.spec import Spec
from mtl_sweep.tracking import Tracker
from mtl_sweep.tracking_uri import resolve_tracking_uri, store_exists
from mtl_sweep.ui_link import ui_hint

LIST_DONE_MAX = 20  # list skipped keys one per line up to this many


@dataclass
class RunOptions:
    """The `mtl-sweep run` command line, as plain values."""

    spec: str
    overrides: tuple[str, ...] = ()
    address: str | None = None
    tracking_uri: str | None = None
    max_concurrent: int | None = None
    rerun: bool = False
    dry_run: bool = False
    verbose: bool = False
    storage_path: str | None = None


@dataclass
class Outcome:
    """What happened to the work this invocation scheduled."""

    finished: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # payload, error


def run_sweep(opts: RunOptions) -> int:
    """Run a sweep end to end; returns the exit code (0 all finished, 1 some failed)."""
    if not opts.verbose:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    spec = load_spec(opts.spec, opts.overrides)
    plan = expand(spec, opts.spec)
    uri = resolve_tracking_uri(opts.tracking_uri, spec.tracking.uri)
    prep = DataPrep(plan, default_cache_dir(spec.data.cache_dir))
    prep.check()  # what a user can get wrong exits 2 before MLflow or Ray start
    prep.start()  # synthetic faces render while MLflow and Ray start
    try:
        return _run_prepared(opts, spec, plan, uri, prep)
    finally:
        prep.cancel()  # does something only when giving up before the data was needed


def _run_prepared(opts: RunOptions, spec: Spec, plan: Plan, uri: str, prep: DataPrep) -> int:
    echo = click.echo
    if opts.dry_run:
        prep.wait()  # a dry run checks everything, the synthetic data included
    if opts.dry_run and not store_exists(uri):
        echo(
            f"dry run: {len(plan.jobs)} pretraining jobs and {len(plan.trials)} trials would run "
            f"(no store at {uri} yet)"
        )
        return 0
    tracker = Tracker(uri)
    exp_id = tracker.experiment_id(spec.experiment, create=not opts.dry_run)
    done_trials: set[str] = set()
    done_jobs: set[str] = set()
    if exp_id is not None and not opts.rerun:
        done_trials = tracker.finished_keys(spec.experiment)
    if not opts.rerun:
        done_jobs = tracker.finished_job_keys([j.key for j in plan.jobs])
    todo_jobs = [j for j in plan.jobs if j.key not in done_jobs]
    todo_trials = [t for t in plan.trials if t.key not in done_trials]
    # A job is needed only if a trial that will run uses it.
    needed = {t.pretrain_key for t in todo_trials}
    todo_jobs = [j for j in todo_jobs if j.key in needed]
    skipped = [t for t in plan.trials if t.key in done_trials]
    _print_skipped(skipped, len(plan.trials))

    if opts.dry_run:
        echo(f"dry run: would run {len(todo_jobs)} pretraining jobs and {len(todo_trials)} trials")
        return 0
    assert exp_id is not None
    stale = tracker.close_stale(exp_id, spec.name)
    if stale:
        echo(f"marked {stale} run(s) left RUNNING by an earlier driver as KILLED")
    sweep_run = tracker.sweep_run(exp_id, spec.name)
    tracker.client.log_text(
        sweep_run, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), C.SPEC_ARTIFACT
    )
    if spec.description:
        tracker.client.set_tag(sweep_run, "mlflow.note.content", spec.description)

    started = time.monotonic()
    outcome = Outcome()
    status = "KILLED"  # unless we get to the end: interrupted, or the driver itself failed
    try:
        if todo_jobs or todo_trials:
            echo(f"running {len(todo_jobs)} pretraining job(s) and {len(todo_trials)} trial(s)")
            ctx = RunContext(spec, uri, exp_id, sweep_run, prep.cache_dir)
            outcome = _tune(plan, ctx, todo_jobs, todo_trials, opts, ready=prep.wait)
        else:
            prep.wait()
            echo("nothing to run: every trial is done (use --rerun to run them again)")
        _attach_report(tracker, uri, spec.experiment, spec.name, sweep_run)
        status = "FAILED" if outcome.failed else "FINISHED"
    finally:
        tracker.client.set_terminated(sweep_run, status)
    elapsed = time.monotonic() - started
    _print_summary(outcome, len(skipped), elapsed)
    for line in ui_hint(uri, exp_id):
        echo(line)
    return 1 if outcome.failed else 0


def _make_searcher(jobs: list[dict], trials: list[tuple[dict, str | None]]):
    """A Tune searcher over fixed payloads that respects pretraining dependencies."""
    from ray.tune.search import Searcher  # imported here: `mtl_sweep` loads no ray at import

    class Staged(Searcher):
        """Hands out pretraining jobs first, then trials whose job (if any) has finished."""

        def __init__(self) -> None:
            super().__init__()
            self.jobs = deque(jobs)
            self.ready: list[dict] = [p for p, dep in trials if dep is None]
            self.waiting: dict[str, list[dict]] = {}
            for payload, dep in trials:
                if dep is not None:
                    self.waiting.setdefault(dep, []).append(payload)
            self.live: dict[str, dict] = {}
            self.skipped: list[tuple[dict, str]] = []

        def suggest(self, trial_id: str) -> dict | None:
            if self.jobs:
                payload = self.jobs.popleft()
            elif self.ready:
                payload = self.ready.pop(0)
            elif self.live or self.waiting:
                return None  # wait for a running job to release its trials
            else:
                return Searcher.FINISHED
            self.live[trial_id] = payload
            return {"payload": payload}

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
            payload = self.live.pop(trial_id, None)
            if payload is None or payload["kind"] != C.KIND_PRETRAIN:
                return
            dependents = self.waiting.pop(payload["key"], [])
            if error:
                reason = f"its pretraining job {payload['key']} ({payload['name']}) failed"
                self.skipped.extend((d, reason) for d in dependents)
            else:
                self.ready.extend(dependents)
                # Longest first, released trials included, so no long trial ends alone.
                self.ready.sort(key=lambda p: -len(p["config"]["tasks"]))

    return Staged()


def _tune(
    plan: Plan, ctx: RunContext, jobs, trials, opts: RunOptions, ready: Callable[[], None]
) -> Outcome:
    """Run the work on Ray Tune; `ready()` blocks until the data is prepared."""
    address = opts.address or os.environ.get("RAY_ADDRESS")
    if not address:
        # A local instance stays on loopback; Ray reads this when it is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not opts.verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

    import ray
    from ray import tune

    from mtl_sweep.progress import ProgressView
    from trainables.entry import tune_trainable

    spec = ctx.spec
    job_keys = {j.key for j in jobs}
    job_payloads = [job_payload(j, ctx) for j in jobs]
    # Longest first (more tasks read more sources per epoch), so the sweep does not end
    # with one long trial running alone; the searcher keeps that order.
    ordered = sorted(trials, key=lambda t: -len(t.tasks))
    trial_payloads = [
        (trial_payload(t, ctx), t.pretrain_key if t.pretrain_key in job_keys else None)
        for t in ordered
    ]
    searcher = _make_searcher(job_payloads, trial_payloads)
    total = len(job_payloads) + len(trial_payloads)

    init_kwargs: dict[str, Any] = {
        "log_to_driver": opts.verbose,
        "logging_level": logging.INFO if opts.verbose else logging.ERROR,
        "include_dashboard": False,
    }
    if address:
        init_kwargs["address"] = address
    if not opts.verbose:
        # Our summary reports failed trials; Tune's own tracebacks stay behind -v.
        for name in ("ray", "ray.tune", "ray.air", "ray.train"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(**init_kwargs)
    try:
        ready()  # the synthetic faces, rendering since before MLflow and Ray started
        resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
        max_conc = opts.max_concurrent or spec.resources.max_concurrent
        cluster_cpus = ray.cluster_resources().get("CPU", 1)
        concurrency = max_conc or max(1, int(cluster_cpus // spec.resources.cpu))
        progress = ProgressView(total, concurrency, skipped=lambda: len(searcher.skipped))
        # Tune keeps one pending trial for searchers other than grid/random search, which
        # would run the trials one at a time; allow as many as can run at once.
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(concurrency))
        storage = opts.storage_path or os.environ.get("MTL_SWEEP_STORAGE")
        if storage and "://" not in storage:  # a bucket URI stays as it is
            storage = str(Path(storage).expanduser().absolute())
        run_config = tune.RunConfig(
            name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=spec.failure.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[progress],
            verbose=1 if opts.verbose else 0,
        )
        tuner = tune.Tuner(
            tune.with_resources(tune_trainable, resources),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=total,
                max_concurrent_trials=max_conc,
                reuse_actors=True,
            ),
            run_config=run_config,
        )
        results = tuner.fit()
        outcome = Outcome()
        for result in results:
            payload = (result.config or {}).get("payload")
            if payload is None:
                continue
            if result.error is not None:
                outcome.failed.append((payload, _last_line(str(result.error))))
            else:
                outcome.finished.append(payload)
        outcome.failed.extend(searcher.skipped)
        _drop_checkpoints(results)
        return outcome
    finally:
        if started_here:
            ray.shutdown()


def _drop_checkpoints(results) -> None:
    """Delete Tune's per-trial checkpoints of finished trials (MLflow keeps the best)."""
    for result in results:
        if result.error is None and result.path:
            for ckpt_dir in Path(result.path).glob("checkpoint_*"):
                shutil.rmtree(ckpt_dir, ignore_errors=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


def _attach_report(tracker: Tracker, uri: str, experiment: str, sweep: str, run_id: str) -> None:
    """Render the markdown report and store it on the sweep run (report.md)."""
    try:
        from mtl_sweep.report import render_report
    except ImportError:
        return
    try:
        text = render_report(uri, experiment=experiment, sweep=sweep, fmt="markdown")
    except Exception as exc:  # the runs are safe in MLflow; a report can be made later
        click.echo(f"report not attached: {exc}", err=True)
        return
    tracker.client.log_text(run_id, text, C.REPORT_ARTIFACT)


def _print_skipped(skipped, total: int) -> None:
    if not skipped:
        return
    click.echo(f"{len(skipped)} of {total} trials already done (FINISHED in MLflow), skipped:")
    for t in skipped[:LIST_DONE_MAX]:
        click.echo(f"  {t.key}  {t.name}")
    if len(skipped) > LIST_DONE_MAX:
        click.echo(f"  ... and {len(skipped) - LIST_DONE_MAX} more (mtl-sweep plan lists them)")


def _print_summary(outcome: Outcome, n_skipped: int, elapsed: float) -> None:
    echo = click.echo
    ran = len(outcome.finished)
    echo(
        f"finished {ran}, failed {len(outcome.failed)}, already done {n_skipped} in {elapsed:.0f}s"
    )
    if outcome.failed:
        echo("failed:", err=True)
        for payload, error in outcome.failed:
            cfg = payload["config"]
            detail = {
                k: cfg.get(k) for k in ("tasks", "backbone", "weighting", "loss_weights", "seed")
            }
            echo(f"  {payload['key']}  {payload['name']}  {detail}", err=True)
            echo(f"    {error}", err=True)
