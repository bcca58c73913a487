"""Benchmark: expanding a spec of 48,000 trials (`plan` and `run` start with it).

    python benchmarks/bench_expand.py [--trials 48000] [--repeat 3]

The spec is bench_store.SPEC (200 trials per seed) with as many seeds as --trials needs.
The baseline, in the same process, is the same grid at a tenth of the seeds: the ratio
says whether expansion stays linear. Target (issue 31): 48,000 trials in <= 10 s on 2
cores. Wall and CPU seconds are both printed (the CPU figure is what other work on a
shared machine inflates least); each is the median of --repeat expansions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_store  # noqa: E402  (the benchmarks folder is not a package)

TARGET_S = 10.0


def timed(seeds: int, repeat: int) -> tuple[int, float, float]:
    """(trials, median wall s, median CPU s) of expanding the bench grid with `seeds`."""
    from mtl_sweep.expand import expand
    from mtl_sweep.spec.load import parse_spec

    spec = parse_spec(bench_store.SPEC.replace("SEEDS", str(list(range(seeds)))), "b.yaml")
    walls, cpus, n = [], [], 0
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        n = len(expand(spec, "b.yaml").trials)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return n, statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Time the baseline and the full expansion and print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48_000, help="trials to expand")
    parser.add_argument("--repeat", type=int, default=3, help="expansions timed (median)")
    args = parser.parse_args()
    per_seed = bench_store.grid_shape()[1]
    seeds = -(-args.trials // per_seed)
    small = timed(max(1, seeds // 10), args.repeat)
    full = timed(seeds, args.repeat)
    print(f"{'trials':>7} {'wall s':>7} {'CPU s':>6} {'ms/trial (CPU)':>15} {'/ baseline':>10}")
    for n, wall, cpu in (small, full):
        print(f"{n:7d} {wall:7.2f} {cpu:6.2f} {1000 * cpu / n:15.4f} {cpu / small[2]:10.2f}")
    verdict = "OK" if full[1] <= TARGET_S else "OVER TARGET"
    print(f"target {TARGET_S:.0f} s wall for {full[0]} trials: {verdict}")


if __name__ == "__main__":
    main()
