"""Benchmark: `mtl-sweep report` and the finished-key lookup over a sweep of N runs.

    python benchmarks/bench_report.py [--runs 2000] [--store DIR] [--profile FILE]

Builds (or reuses, after checking it) a sqlite store of exactly N sweep runs (see
bench_store.py: a real spec's expansion, grown by seeds; stores are named after what they
hold), then times, each in a fresh `python` process that pays its own imports:

- baseline: a bare `MlflowClient.search_runs` over the sweep's runs (pages of 1,000,
  as `mtl_core.runs.iter_runs` reads them), the query alone and with its imports;
- report cold: `render_report` with an empty cache folder;
- report warm: the same again, nothing changed in the store;
- lookup: the finished keys `plan` and `run` look up (trials of the experiment and the
  pretraining jobs), as `mtl-sweep plan` calls it.

Each process reports its wall time and peak RSS. Targets (issue 31, 100,000 runs): report
cold <= 15 s, warm <= 3 s, lookup <= 5 s, RSS <= 1 GiB; the ratios to the baseline query
are printed beside them. `--profile FILE` also writes a cProfile of a cold report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_store  # noqa: E402  (the benchmarks folder is not a package)

TARGETS = {"report_cold": 15.0, "report_warm": 3.0, "lookup": 5.0}  # s, at 100,000 runs
RSS_TARGET_MIB = 1024

# Each snippet runs in a fresh process, sets `t0` where its timed part starts and `n` to
# what it read, then prints one JSON line: seconds since the process started (imports
# included), the timed part, the process's CPU seconds (which other work on a shared
# machine inflates less than wall time), and peak RSS (MiB).
PRELUDE = """\
import json, resource, sys, time
T = time.perf_counter()
sys.path.insert(0, {repo!r})
"""
# Peak RSS is the kernel's VmHWM: ru_maxrss would start at the bench's own size (the
# child is forked from it before it execs python).
EPILOGUE = """
use = resource.getrusage(resource.RUSAGE_SELF)
now = time.perf_counter()
out = {"total": now - T, "timed": now - t0, "cpu": use.ru_utime + use.ru_stime, "n": n}
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({**out, "rss_mib": hwm / 1024}))
"""
SNIPPETS = {
    "baseline": """\
from mlflow import MlflowClient
client = MlflowClient(tracking_uri={uri!r})
exp = client.get_experiment_by_name("bench").experiment_id
t0 = time.perf_counter()
token, n = None, 0
while True:
    page = client.search_runs(
        [exp], "tags.`mtl_sweep.sweep` = 'bench'", max_results=1000, page_token=token
    )
    n += len(page)
    token = page.token
    if not token:
        break
""",
    "report": """\
t0 = T
from mtl_sweep.report import render_report
n = len(render_report({uri!r}))
""",
    "lookup": """\
t0 = T
from mtl_sweep.commands.main import _finished_keys
n = len(_finished_keys({uri!r}, "bench", {jobs!r}))
""",
}


def timed(kind: str, uri: str, cache: Path, jobs: list[str], profile: Path | None = None) -> dict:
    """Run one snippet in a fresh process with `cache` as the cache folder."""
    body = SNIPPETS[kind].format(uri=uri, jobs=jobs)
    code = PRELUDE.format(repo=str(REPO)) + body + EPILOGUE
    env = {**os.environ, "MTL_SWEEP_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as scratch:
        argv = [sys.executable, "-c", code]
        if profile is not None:
            script = Path(scratch) / "snippet.py"
            script.write_text(code)
            argv = [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_store(folder: Path, n_runs: int) -> tuple[str, float | None]:
    """The store's URI, built unless a checked one is there; and the build's seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / bench_store.store_name(n_runs)
    uri = f"sqlite:///{db}"
    if db.exists():
        bench_store.check_store(uri, n_runs)
        print(f"reusing {db} (checked: {n_runs} sweep runs)")
        return uri, None
    t0, c0 = time.perf_counter(), time.process_time()
    # sqlite syncs every commit to disk; building in tmpfs (where there is one) and moving
    # the file is faster. The report then reads the moved file.
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None)) / db.name
    try:
        n = bench_store.build(scratch, n_runs)
        shutil.move(scratch, db)
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)
    bench_store.check_store(uri, n_runs)
    seconds = time.perf_counter() - t0
    print(
        f"built {n} sweep runs into {db} in {seconds:.0f} s ({time.process_time() - c0:.0f} s CPU)"
    )
    return uri, seconds


def main() -> None:
    """Build (or reuse) the store, then time the baseline, the report and the lookup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="keep the store in this dir")
    parser.add_argument("--runs", type=int, default=2000, help="sweep runs in the store")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile a cold report")
    parser.add_argument("--build-only", action="store_true", help="build the store, time nothing")
    args = parser.parse_args()
    bench_store.check_runs(args.runs)  # refuses a --runs this grid cannot build, at once
    folder = args.store or Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        uri, build_s = ensure_store(folder, args.runs)
        if not args.build_only:
            measure(uri, args.runs, build_s, args.profile)
    finally:
        if args.store is None:
            shutil.rmtree(folder, ignore_errors=True)


def measure(uri: str, n_runs: int, build_s: float | None, profile: Path | None) -> None:
    """Time every measure in fresh processes and print the table row."""
    jobs = [j.config.key for j in bench_store.job_plan().jobs]  # the same for any seeds
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        base = timed("baseline", uri, cache, jobs)
        cold = timed("report", uri, cache, jobs)
        warm = timed("report", uri, cache, jobs)
        lookup = timed("lookup", uri, cache, jobs)
        if profile is not None:
            shutil.rmtree(cache)
            timed("report", uri, cache, jobs, profile)
            print(f"profile of a cold report: {profile}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    q = base["timed"]
    rows = [
        ("baseline search_runs (query)", base, "timed", None),
        ("baseline search_runs (process)", base, "total", None),
        ("report cold (process)", cold, "total", "report_cold"),
        ("report warm (process)", warm, "total", "report_warm"),
        ("finished-key lookup (process)", lookup, "total", "lookup"),
    ]
    built = "reused" if build_s is None else f"{build_s:.0f} s"
    print(f"\n{n_runs} sweep runs (baseline read {base['n']}); build {built}")
    head = ("measure", "wall s", "/ query", "ms/run", "CPU s", "RSS MiB", "target")
    print(
        f"{head[0]:32} {head[1]:>7} {head[2]:>7} {head[3]:>7} {head[4]:>6} {head[5]:>7}  {head[6]}"
    )
    for name, result, part, target in rows:
        seconds = result[part]
        cpu = f"{result['cpu']:.2f}" if part == "total" else ""
        mib = f"{result['rss_mib']:.0f}" if part == "total" else ""
        goal = f"<= {TARGETS[target]:.0f} s at 100k" if target else ""
        print(
            f"{name:32} {seconds:7.2f} {seconds / q:7.2f} {1000 * seconds / n_runs:7.3f} "
            f"{cpu:>6} {mib:>7}  {goal}"
        )
    peak = max(r["rss_mib"] for r in (cold, warm, lookup))
    print(f"peak RSS of the report and lookup: {peak:.0f} MiB (target <= {RSS_TARGET_MIB})")


if __name__ == "__main__":
    main()
