"""Orchestration overhead of `mtl-sweep run` on a spec (default: sweeps/ablation.yaml).

Runs the spec from a fresh MLflow store in a temporary directory, then reads each run's
own wall time (`time/trial_s`, measured inside the trainable from entry to exit) from
MLflow. By default the data is prepared first, untimed (`mtl-sweep data check SPEC`
generates the synthetic data and decodes the caches), so the timing is orchestration;
`--cold` times the data preparation too.

    overhead ratio = sweep wall time / (sum of the runs' own times / concurrency)
    startup        = from the command's start to the first run's start
                     (imports, checks, MLflow setup, ray.init, the first actor)
    overhead per run = (wall - startup - sum / concurrency) * concurrency / runs

Targets: ratio <= 1.15 and <= 1.5 s per run.

    python benchmarks/bench_orchestration.py [--spec sweeps/ablation.yaml] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "sweeps" / "ablation.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--cold", action="store_true", help="time data preparation too")
    args = parser.parse_args()

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
    sets = [x for item in args.overrides for x in ("--set", item)]
    if not args.cold:
        prep = [sys.executable, "-m", "mtl_sweep", "data", "check", args.spec, *sets]
        subprocess.run(prep, cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
    cmd = [sys.executable, "-m", "mtl_sweep", "run", args.spec, *sets]
    start_epoch = time.time()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"mtl-sweep run exited {proc.returncode}")

    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name(spec.experiment)
    runs = [
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("mtl_sweep.kind") in ("trial", "pretrain")
    ]
    own = [r.data.metrics["time/trial_s"] for r in runs]
    import ray  # only for the CPU count Ray would see

    cpus = os.cpu_count() or 1
    concurrency = spec.resources.max_concurrent or max(1, int(cpus // spec.resources.cpu))
    ideal = sum(own) / concurrency
    startup = min(r.info.start_time for r in runs) / 1000 - start_epoch
    per_run = (wall - startup - ideal) * concurrency / len(runs)
    data = "timed (cold)" if args.cold else "prepared beforehand, untimed"
    print(
        f"spec {args.spec}: {len(runs)} runs, concurrency {concurrency} ({cpus} CPUs, "
        f"ray {ray.__version__}); data {data}"
    )
    print(f"sweep wall time (from the command's start to its exit): {wall:.1f} s")
    print(f"sum of runs' own time: {sum(own):.1f} s -> ideal wall {ideal:.1f} s")
    print(f"overhead ratio: {wall / ideal:.3f} (target <= 1.15)")
    print(f"startup to the first run: {startup:.1f} s")
    print(f"overhead per run after startup: {per_run:.2f} s (target <= 1.5)")
    if args.keep:
        print(f"kept {tmp}")


if __name__ == "__main__":
    main()
