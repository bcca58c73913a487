"""Orchestration overhead of `mtl-sweep run` on a spec (default: sweeps/ablation.yaml).

Runs the spec from a fresh store in a temporary directory (a cold start: synthetic data
generation, cache build, ray.init, every trial), then reads each run's own wall time
(`time/trial_s`, measured inside the trainable from entry to exit) from MLflow.

    overhead ratio = sweep wall time / (sum of the runs' own times / concurrency)
    overhead per run = (sweep wall time - sum / concurrency) * concurrency / runs

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
    args = parser.parse_args()

    from mlflow import MlflowClient

    from mtl_sweep.load import load_spec

    spec = load_spec(args.spec, args.overrides)
    tmp = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    env = dict(
        os.environ,
        MTL_SWEEP_CACHE=str(tmp / "cache"),
        MTL_SWEEP_STORAGE=str(tmp / "ray_results"),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "mtl_sweep.cli", "run", args.spec]
    for item in args.overrides:
        cmd += ["--set", item]
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
    print(
        f"spec {args.spec}: {len(runs)} runs, concurrency {concurrency} ({cpus} CPUs, "
        f"ray {ray.__version__})"
    )
    print(f"sweep wall time (cold start, from the command's start to its exit): {wall:.1f} s")
    print(f"sum of runs' own time: {sum(own):.1f} s -> ideal wall {ideal:.1f} s")
    print(f"overhead ratio: {wall / ideal:.3f} (target <= 1.15)")
    print(f"overhead per run: {(wall - ideal) * concurrency / len(runs):.2f} s (target <= 1.5)")
    if args.keep:
        print(f"kept {tmp}")


if __name__ == "__main__":
    main()
