"""`mtl-sweep run`: a spec's trials on Ray Tune, tracked in MLflow, idempotently.

Order of work:
1. Load and expand the spec, resolve the tracking URI and cache dir (all absolute), and
   check every data source. Problems exit 2 before Ray starts. Synthetic data starts
   rendering here, in the background; on a local Ray, trials wait for it (see _tune).
2. In MLflow: create the experiment once, reuse the sweep's parent run, mark runs a
   dead driver left RUNNING as KILLED, and skip every trial or pretraining job that
   already has a FINISHED run with its key (a pretraining job in any experiment).
3. Ray Tune runs what is left. A searcher hands out pretraining jobs first and
   releases the trials that need a job only when it has finished; trials that need no
   pretraining are not held back. Actors are reused; a failed trial is retried from its
   last checkpoint up to `failure.retries` times.
4. The report is rendered (while Ray shuts down) and attached to the sweep run; the exit
   code is 0 when every trial finished and 1 when some failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

import mtl_sweep.run.cluster as cluster
from mtl_core import contract as C
from mtl_core.cachedir import default_cache_dir
from mtl_core.errors import InfraError
from mtl_core.files import writable_dir
from mtl_core.trial import TUNE_CONFIG_KEY, TrialRequest
from mtl_sweep.expand import Plan, expand
from mtl_sweep.run.fault_env import FaultSettings
from mtl_sweep.run.interrupt import Interrupt
from mtl_sweep.run.prepare import DataPrep
from mtl_sweep.run.report_job import ReportJob
from mtl_sweep.run.requests import RunContext, job_request, trial_request
from mtl_sweep.run.searcher import StagedSearcher
from mtl_sweep.run.store_watch import StoreWatch
from mtl_sweep.run.summary import command_seconds, print_next_steps, print_skipped, print_summary
from mtl_sweep.run.tuned import tuned_todo
from mtl_sweep.spec.load import load_spec
from mtl_sweep.spec.redact import redacted_dump
from mtl_sweep.store.lease import Lease
from mtl_sweep.store.orphans import discard_orphans
from mtl_sweep.store.tracker import Tracker
from mtl_sweep.store.uri import resolve_tracking_uri, store_exists


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

    finished: list[TrialRequest] = field(default_factory=list)
    failed: list[tuple[TrialRequest, str]] = field(default_factory=list)  # request, error
    interrupted: list[TrialRequest] = field(default_factory=list)  # stopped by a signal


@dataclass
class Work:
    """What this invocation will run, and what is already done."""

    jobs: list
    trials: list
    skipped: list  # trials already FINISHED

    def tune_parts(self, ctx: RunContext) -> tuple[Any, Any, int]:
        """The searcher (jobs before the trials that need them), no scheduler, the count."""
        job_keys = {j.key for j in self.jobs}
        searcher = StagedSearcher(
            [job_request(j, ctx) for j in self.jobs],
            [
                (trial_request(t, ctx), t.pretrain_key if t.pretrain_key in job_keys else None)
                for t in self.trials
            ],
        )
        return searcher, None, len(self.jobs) + len(self.trials)

    def settle(self, searcher: Any, outcome: Outcome, ctx: RunContext) -> None:
        """After Tune, before the runs are closed: nothing to do for a grid."""

    def has_work(self) -> bool:
        """Whether anything is left to run."""
        return bool(self.jobs or self.trials)


def run_sweep(opts: RunOptions) -> int:
    """Run a sweep end to end; returns the exit code.

    0 when every trial finished, 1 when some failed, 128 + signal when interrupted.
    """
    if not opts.verbose:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    interrupt = Interrupt()
    with interrupt.installed():
        spec = load_spec(opts.spec, opts.overrides)
        plan = expand(spec, opts.spec)
        uri = resolve_tracking_uri(opts.tracking_uri, spec.tracking.uri)
        faults = FaultSettings.from_env()
        # Paths and the cluster a user named: one line (exit 2 or 3) before anything starts.
        cache = writable_dir(default_cache_dir(spec.data.cache_dir), "the cache folder")
        storage = _storage_path(opts)
        if storage and "://" not in storage:
            given = "--storage-path" if opts.storage_path else "$MTL_SWEEP_STORAGE"
            writable_dir(Path(storage), f"the Tune storage folder ({given})")
        cluster.check_reachable(_address(opts))
        prep = DataPrep(plan, cache)
        prep.check()  # what a user can get wrong exits 2 before MLflow or Ray start
        prep.start()  # synthetic faces render while MLflow and Ray start
        try:
            return _prepared(opts, spec, plan, uri, prep, interrupt, faults)
        finally:
            prep.cancel()  # does something only when giving up before the data was needed


def _prepared(
    opts: RunOptions, spec, plan: Plan, uri: str, prep: DataPrep, interrupt, faults
) -> int:
    """The sweep once its data is checked (and synthetic faces are rendering)."""
    if opts.dry_run:
        if not _address(opts):
            cluster.check_fits_here(opts.spec, spec.resources.cpu)  # as the real run would
        prep.wait()  # a dry run checks everything, the synthetic data included
    if opts.dry_run and not store_exists(uri):
        click.echo(
            f"dry run: {len(plan.jobs)} pretraining jobs and {len(plan.trials)} trials "
            f"would run (no store at {uri} yet)"
        )
        return 0
    tracker = Tracker(uri)
    exp_id = tracker.experiment_id(spec.experiment, create=not opts.dry_run)
    todo = tuned_todo if spec.search is not None else _todo  # a search: docs/tuning.md
    work = todo(tracker, plan, spec.experiment, exp_id, opts.rerun)
    if opts.dry_run:
        click.echo(
            f"dry run: would run {len(work.jobs)} pretraining jobs and {len(work.trials)} trials"
        )
        return 0
    assert exp_id is not None
    prep.labels_ok()  # before the sweep's run exists: a split with no sample is exit 2
    ctx = RunContext(spec, uri, exp_id, "", prep.cache_dir, faults)
    return _drive(tracker, plan, work, ctx, opts, interrupt, prep)


def _todo(tracker: Tracker, plan: Plan, experiment: str, exp_id: str | None, rerun: bool) -> Work:
    """The jobs and trials not FINISHED yet (everything with --rerun)."""
    done_trials: set[str] = set()
    done_jobs: set[str] = set()
    if not rerun:
        if exp_id is not None:
            done_trials = tracker.finished_keys(experiment)
        done_jobs = tracker.finished_job_keys([j.key for j in plan.jobs])
    trials = [t for t in plan.trials if t.key not in done_trials]
    # A job is needed only if a trial that will run uses it.
    needed = {t.pretrain_key for t in trials}
    jobs = [j for j in plan.jobs if j.key not in done_jobs and j.key in needed]
    skipped = [t for t in plan.trials if t.key in done_trials]
    print_skipped(skipped, len(plan.trials))
    return Work(jobs, trials, skipped)


def _drive(
    tracker: Tracker,
    plan: Plan,
    work: Work,
    ctx: RunContext,
    opts: RunOptions,
    interrupt: Interrupt,
    prep: DataPrep,
) -> int:
    """Hold the sweep's lease, run the work, and leave every run in an honest state."""
    spec, exp_id = ctx.spec, ctx.experiment_id
    sweep_run = tracker.sweep_run(exp_id, spec.name)
    lease = Lease(tracker.client, sweep_run, ctx.tracking_uri, spec.name)
    lease.acquire()  # before touching runs another live driver may own
    # A store that stays down: one line within a minute, exit 3 once trials cannot wait.
    watch = StoreWatch(ctx.tracking_uri, ctx.faults.store_deadline_s, spec.failure.retries + 1)
    watch.start()
    interrupt.stop_when(watch.gave_up)
    ctx = replace(ctx, parent_run_id=sweep_run)
    outcome = Outcome()
    report = ReportJob(ctx.tracking_uri, spec.experiment, spec.name)
    status = "KILLED"  # unless we get to the end: interrupted, or the driver itself failed
    try:
        stale = tracker.close_stale(exp_id, spec.name)
        if stale:
            click.echo(f"marked {stale} run(s) left RUNNING by an earlier driver as KILLED")
        tracker.client.log_text(sweep_run, redacted_dump(spec), C.SPEC_ARTIFACT)  # no secrets
        if spec.description:
            tracker.client.set_tag(sweep_run, "mlflow.note.content", spec.description)
        if opts.rerun:
            _forget_checkpoints(ctx, work)
        folders = {i.key: ctx.checkpoint_dir(i.key) for i in [*work.jobs, *work.trials]}
        discard_orphans(tracker.client, folders, exp_id)
        if work.has_work() and not interrupt.requested:
            click.echo(
                f"running {len(work.jobs)} pretraining job(s) and {len(work.trials)} trial(s)"
            )
            outcome = _tune(ctx, work, opts, interrupt, prep, report.start)
        elif not interrupt.requested:
            prep.wait()
            click.echo("nothing to run: every trial is done (use --rerun to run them again)")
        if not interrupt.requested and watch.check():
            report.attach(tracker.client, sweep_run)
            status = "FAILED" if outcome.failed else "FINISHED"
    finally:
        watch.stop()
        if watch.check():  # else nothing can be marked: the next run takes the lease over
            with interrupt.shielded():
                _settle(tracker, ctx, sweep_run, outcome, status, interrupt)
            lease.release()
    print_summary(outcome, len(work.skipped), command_seconds(), interrupt)
    if watch.down_since is not None:
        raise InfraError(watch.verdict())
    print_next_steps(ctx.tracking_uri, exp_id, spec.experiment, spec.name, report.attached)
    if interrupt.requested:
        return interrupt.exit_code
    return 1 if outcome.failed else 0


def _settle(tracker, ctx, sweep_run, outcome: Outcome, status: str, interrupt) -> None:
    """End the sweep run; interrupted trials' runs KILLED, any other child still RUNNING
    FAILED with the reason. Guarded: a failing store must not hide the summary."""
    reason = (
        f"interrupted by {interrupt.name}; resumes from its last checkpoint on the next run"
        if interrupt.requested
        else "its driver ended while it was running"
    )
    interrupted = {r.key for r in outcome.interrupted}
    end = "KILLED" if interrupt.requested else "FAILED"
    try:
        for run in tracker.children(ctx.experiment_id, sweep_run, ("RUNNING", "FAILED")):
            # A stopped trial may have ended its own run FAILED on the way out.
            stopped = run.data.tags.get(C.KEY) in interrupted
            if run.info.status == "RUNNING" or stopped:
                tracker.client.set_tag(run.info.run_id, C.ERROR, reason)
                tracker.client.set_terminated(run.info.run_id, end)
        tracker.client.set_terminated(sweep_run, status)
    except Exception as exc:  # the store may be what failed; say so, keep the summary
        click.echo(f"warning: could not update the tracking store at the end: {exc}", err=True)


def _forget_checkpoints(ctx: RunContext, work: Work) -> None:
    """--rerun starts every trial afresh: drop their resume checkpoints."""
    for item in [*work.jobs, *work.trials]:
        shutil.rmtree(ctx.checkpoint_dir(item.key), ignore_errors=True)


def _tune(
    ctx: RunContext,
    work: Work,
    opts: RunOptions,
    interrupt: Interrupt,
    prep: DataPrep,
    finished: Callable[[], None],
) -> Outcome:
    """Run the jobs and trials on Ray Tune (starting a local Ray unless given an address);
    `finished()` is called when Tune is done and nothing was interrupted, before Ray's
    shutdown (which then overlaps with what it starts).

    The synthetic faces render while Ray starts. On a local Ray, Tune starts too: the
    first actors import torch while the faces render, and each trial waits for its data
    before its clock starts (trainables/trial_data.py: resolve_sources), under the file
    lock the driver holds while it writes. A cluster's trials start once the data is
    ready: a shared folder's file lock may not hold across nodes.
    """
    import ray

    searcher, scheduler, total = work.tune_parts(ctx)
    started_here = _start_ray(opts)
    interrupt.reclaim()  # ray.init took SIGTERM: a stop must go through Tune, not abort
    try:
        if not started_here:
            prep.wait()
        stopper = interrupt.stopper(also=prep.failed)  # a failed render stops every trial
        tuner = _tuner(ctx.spec, searcher, scheduler, total, opts, stopper, ctx.tracking_uri)
        outcome = _outcome(tuner.fit())
        work.settle(searcher, outcome, ctx)
        if not interrupt.requested:
            prep.wait()  # raises what stopped the rendering, if anything did
            outcome.failed.extend(searcher.skipped)
            finished()
        return outcome
    finally:
        if started_here:
            ray.shutdown()


def _start_ray(opts: RunOptions) -> bool:
    """Join the given cluster, or start a quiet local Ray on loopback; True if started here."""
    address = _address(opts)
    if not address:
        # A local instance stays on loopback; Ray reads this when it is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Our Interrupt handles SIGINT (Tune's own handler would report stopped trials as done).
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    if not opts.verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        # Our summary reports failed trials; Tune's own tracebacks stay behind -v.
        for name in ("ray", "ray.tune", "ray.air", "ray.train"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "log_to_driver": opts.verbose,
        "logging_level": logging.INFO if opts.verbose else logging.ERROR,
        "include_dashboard": False,
    }
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(cluster.local_resources())  # tests: fake GPUs (see run/cluster.py)
        # Ray starts one worker per CPU for the first driver, but Tune's trial actors carry
        # their own runtime env and never use them: ~0.5 CPU-s each, on the cores that
        # render the synthetic faces (benchmarks/bench_orchestration.py).
        kwargs["_system_config"] = {"prestart_worker_first_driver": False}
    ray.init(**kwargs)
    return True


def _address(opts: RunOptions) -> str | None:
    """The Ray cluster to join: --address, else $RAY_ADDRESS; None = start a local one."""
    return opts.address or os.environ.get("RAY_ADDRESS")


def _storage_path(opts: RunOptions) -> str | None:
    """Where Tune keeps its experiment state: --storage-path, else $MTL_SWEEP_STORAGE (an
    absolute local path, or a bucket URI as given); None = Tune's default."""
    storage = opts.storage_path or os.environ.get("MTL_SWEEP_STORAGE")
    if storage and "://" not in storage:
        storage = str(Path(storage).expanduser().absolute())
    return storage


def _tuner(spec, searcher, scheduler, total: int, opts: RunOptions, stopper, tracking_uri: str):
    """The Tuner: reused actors, retries from checkpoints, our progress line."""
    import ray
    from ray import tune

    from mtl_sweep.run.progress import ProgressView
    from trainables.tune_entry import tune_trainable

    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    # A trial that fits on no node would wait forever: refuse it before Tune starts.
    address = _address(opts)
    wait = cluster.JOIN_WAIT_S if address else 0.0
    cluster.wait_until_fits(opts.spec, resources["cpu"], resources["gpu"], ray.nodes, wait)
    max_conc = opts.max_concurrent or spec.resources.max_concurrent
    fit = cluster.concurrency(resources["cpu"], resources["gpu"], ray.cluster_resources())
    concurrency = max_conc or fit
    progress = ProgressView(total, concurrency, skipped=lambda: len(searcher.skipped))
    # Tune keeps one pending trial for searchers other than grid/random search, which
    # would run the trials one at a time; allow as many as can run at once.
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(concurrency))
    storage = _storage_path(opts)
    run_config = tune.RunConfig(
        name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=spec.failure.retries),
        stop=stopper,
        callbacks=[progress],
        verbose=1 if opts.verbose else 0,
    )
    return tune.Tuner(
        # The real tracking URI travels in memory; the request's copy is redacted.
        tune.with_resources(
            tune.with_parameters(tune_trainable, tracking_uri=tracking_uri), resources
        ),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,  # None: FIFO; a tuned sweep's per-cell schedulers
            num_samples=total,
            max_concurrent_trials=max_conc,
            reuse_actors=True,
        ),
        run_config=run_config,
    )


def _outcome(results) -> Outcome:
    """Sort Tune's results: finished only when the trial reported its final metrics.

    Tune reports a trial it stopped (a signal) as TERMINATED without an error, so "no
    error" alone would count an interrupted trial as done.
    """
    outcome = Outcome()
    for result in results:
        request = (result.config or {}).get(TUNE_CONFIG_KEY)
        if request is None:
            continue
        if result.error is not None:
            outcome.failed.append((request, _last_line(str(result.error))))
        elif (result.metrics or {}).get("final"):
            outcome.finished.append(request)
        else:
            outcome.interrupted.append(request)
    return outcome


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"
