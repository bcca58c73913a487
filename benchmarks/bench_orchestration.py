"""Orchestration overhead of `mtl-sweep run` on a spec (default: sweeps/ablation.yaml).

Runs the spec from a fresh MLflow store in a temporary directory, then reads each run's
own wall time from MLflow: `time/trial_s`, measured inside the trainable from its entry
(an actor's first trial: after torch's import, before MLflow's) to its last metrics,
after its checkpoint artifact is written (its last Tune report and the run's end come
after). It also gives the ratio by the runs' durations in MLflow (creation to end).
By default the data is prepared first, untimed (`mtl-sweep data check SPEC`
generates the synthetic data and decodes the caches), so the timing is orchestration;
`--cold` times the data preparation too.

    overhead ratio = sweep wall time / (sum of the runs' own times / concurrency)
    startup        = from the command's start to the first run's start
                     (imports, checks, MLflow setup, ray.init, the first actor)
    overhead per run = (wall - startup - sum / concurrency) * concurrency / runs

It also samples the CPU time of the command's whole process tree (cpu_account.py) and
prints it by role (the driver, the synthetic-face renderers, Ray's trial workers, Ray's
own processes) up to the first run's start and to the end: on a machine whose cores are
all busy from the start, startup CPU / cores is the least startup a reordering can reach.

Targets: ratio <= 1.15 (<= 1.10 with --cold) and <= 1.5 s per run.

`--before REV` first runs the same spec with the code of git revision REV (the driver starts
REV's own `mtl-sweep` entry point in a temporary worktree of REV, so it and Ray's workers,
which get the driver's sys.path, import REV's code), then with this checkout, so a change's
effect is measured back to back on the same machine.

    python benchmarks/bench_orchestration.py [--spec S] [--set K=V ...] [--cold] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cpu_account import TreeSampler
from revisions import worktree

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    """One `mtl-sweep run` of the spec, timed."""

    code: str  # which code ran it
    runs: int
    wall: float
    own: float  # sum of the runs' own times
    durations: float  # sum of the runs' durations in MLflow (creation to end)
    concurrency: int
    startup: float
    cpu_startup: dict[str, float]  # CPU seconds by role, up to the first run's start
    cpu_total: dict[str, float]  # ... up to the command's exit
    idle: float  # slot-seconds with no run, between the first run's start and the last's end
    end: float  # from the last run's end to the command's exit

    @property
    def ideal(self) -> float:
        return self.own / self.concurrency

    @property
    def ratio(self) -> float:
        return self.wall / self.ideal

    @property
    def per_run(self) -> float:
        return (self.wall - self.startup - self.ideal) * self.concurrency / self.runs


def cli(tree: Path | None) -> list[str]:
    """The command that runs `mtl-sweep` with `tree`'s code, by its own entry point (the
    module has moved between revisions); None: this checkout."""
    if tree is None:
        return [sys.executable, "-m", "mtl_sweep"]
    scripts = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["mtl-sweep"].split(":")
    # With -c, the working folder (the worktree) is first on sys.path.
    code = f"import sys; from {module} import {func}; sys.argv[0] = 'mtl-sweep'; {func}()"
    return [sys.executable, "-c", code]


def measure(args: argparse.Namespace, code: str, tree: Path | None) -> Measured:
    """Run the spec once with a fresh store, cache and Tune folder, with the code of the
    worktree `tree` (None: this checkout)."""
    # Over 60 lines on purpose: one timed run, start to end, so every clock it reads sits
    # beside the step it times.
    from mlflow import MlflowClient

    from mtl_sweep.spec.load import load_spec

    spec = load_spec(args.spec, args.overrides)
    tmp = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    env = dict(
        os.environ,
        MTL_SWEEP_CACHE=str(tmp / "cache"),
        MTL_SWEEP_STORAGE=str(tmp / "ray_results"),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    cwd = tree or tmp
    sets = [x for item in args.overrides for x in ("--set", item)]
    store = ["--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    if not args.cold:
        prep = [*cli(tree), "data", "check", args.spec, *sets]
        subprocess.run(prep, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    cmd = [*cli(tree), "run", args.spec, *sets, *store]
    start_epoch = time.time()
    start = time.perf_counter()
    # Output to a file: a pipe nobody reads could stall the driver.
    with open(tmp / "run.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as sampler:
            proc.wait()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{code}: mtl-sweep run exited {proc.returncode}; see {tmp / 'run.log'}")

    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name(spec.experiment)
    runs = [
        r
        for r in client.search_runs([exp.experiment_id], max_results=5000)
        if r.data.tags.get("mtl_sweep.kind") in ("trial", "pretrain")
    ]
    cpus = os.cpu_count() or 1
    concurrency = spec.resources.max_concurrent or max(1, int(cpus // spec.resources.cpu))
    if args.keep:
        print(f"{code}: kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    spans = [(r.info.start_time / 1000, r.info.end_time / 1000) for r in runs]
    first = min(start for start, _ in spans)
    return Measured(
        code=code,
        runs=len(runs),
        wall=wall,
        own=sum(r.data.metrics["time/trial_s"] for r in runs),
        durations=sum(end - start for start, end in spans),
        concurrency=concurrency,
        startup=first - start_epoch,
        cpu_startup=sampler.by_role(first),
        cpu_total=sampler.by_role(time.time()),
        idle=idle_slots(spans, concurrency),
        end=start_epoch + wall - max(end for _, end in spans),
    )


def idle_slots(spans: list[tuple[float, float]], concurrency: int) -> float:
    """Slot-seconds no run occupied between the first run's start and the last one's end:
    the gaps between trials on a reused actor, and the tail where fewer runs are left
    than slots."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    idle, running, last = 0.0, 0, events[0][0]
    for when, step in events:
        idle += max(0, concurrency - running) * (when - last)
        running, last = running + step, when
    return idle


def show(m: Measured) -> None:
    print(f"[{m.code}] {m.runs} runs, concurrency {m.concurrency}")
    print(f"  sweep wall time (from the command's start to its exit): {m.wall:.1f} s")
    print(f"  sum of runs' own time: {m.own:.1f} s -> ideal wall {m.ideal:.1f} s")
    print(f"  overhead ratio: {m.ratio:.3f}")
    by_durations = m.wall / (m.durations / m.concurrency)
    print(
        f"  by the runs' MLflow durations instead (which leave out an actor's imports "
        f"before its first run): sum {m.durations:.1f} s, ratio {by_durations:.3f}"
    )
    print(f"  startup to the first run: {m.startup:.1f} s")
    print(f"  overhead per run after startup: {m.per_run:.2f} s (target <= 1.5)")
    print(
        f"  after the first run's start: {m.idle:.1f} slot-seconds without a run (gaps "
        f"and the tail), then {m.end:.1f} s from the last run's end to the exit"
    )
    cpus = os.cpu_count() or 1
    for label, cpu in (("to the first run", m.cpu_startup), ("in all", m.cpu_total)):
        parts = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        print(f"  CPU seconds {label}: {sum(cpu.values()):.1f} ({parts})")
    least = sum(m.cpu_startup.values()) / cpus
    print(f"  startup CPU / {cpus} cores: {least:.1f} s (the startup if every core stays busy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "sweeps" / "ablation.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--cold", action="store_true", help="time data preparation too")
    parser.add_argument("--before", metavar="REV", help="first run the code of git revision REV")
    args = parser.parse_args()
    args.spec = str(Path(args.spec).resolve())  # the runs start in temporary folders

    from importlib.metadata import version

    data = "timed (cold)" if args.cold else "prepared beforehand, untimed"
    print(f"spec {args.spec}; {os.cpu_count()} CPUs, ray {version('ray')}; data {data}")
    results = []
    if args.before:
        with worktree(args.before) as tree:
            results.append(measure(args, f"before: {args.before}", tree))
    results.append(measure(args, "this checkout", None))
    for m in results:
        show(m)
    target = 1.10 if args.cold else 1.15
    after = results[-1]
    print(f"target: ratio <= {target:.2f}; this checkout: {after.ratio:.3f}")
    if len(results) == 2:
        before = results[0]
        print(
            f"before -> after: ratio {before.ratio:.3f} -> {after.ratio:.3f}, startup "
            f"{before.startup:.1f} -> {after.startup:.1f} s, wall {before.wall:.1f} -> "
            f"{after.wall:.1f} s"
        )


if __name__ == "__main__":
    main()
