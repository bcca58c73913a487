"""Synthetic-face generation: seconds for a spec's synthetic source, one process and every core.

Each measurement is a fresh process (as in `mtl-sweep run`: imports and the spawned pool
included) that writes the whole source into a temporary folder and reports the time
and a digest of the bytes written. `--before REV` measures REV's generator in the same
script, alternating rounds (REV first), and says whether the two wrote the same bytes:
a change that keeps GENERATOR_VERSION must.

    python benchmarks/bench_synthetic.py [--spec S] [--workers 1 2] [--rounds N] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

from revisions import worktree

REPO = Path(__file__).resolve().parents[1]

# Run in the measured code's folder (first on sys.path with -c; spawned workers inherit it).
CHILD = """
import hashlib, json, shutil, sys, tempfile, time
from pathlib import Path
from mtl_core.sources import SyntheticSource
from mtl_data.synthetic.write import write_synthetic

if __name__ == "__main__":
    knobs, workers = json.loads(sys.argv[1]), int(sys.argv[2])
    out = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    start = time.perf_counter()
    write_synthetic(out, SyntheticSource(**knobs), workers=workers)
    seconds = time.perf_counter() - start
    h = hashlib.sha256()
    for p in sorted(q for q in out.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(out)).encode())
        h.update(p.read_bytes())
    shutil.rmtree(out)
    print(json.dumps({"seconds": seconds, "digest": h.hexdigest()[:16]}))
"""


def measure(tree: Path, knobs: dict, workers: int) -> dict:
    """One fresh process writing the source with the code in `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(knobs), str(workers)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def source_of(spec_path: str) -> dict:
    """The first synthetic source of the spec, as knobs."""
    from mtl_sweep.spec.load import load_spec

    spec = load_spec(spec_path)
    for task in ("age", "gender", "emotion", "smile"):
        source = getattr(spec.data, task)
        if source.kind == "synthetic":
            return source.model_dump(mode="json")
    sys.exit(f"{spec_path} has no synthetic source")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "sweeps" / "ablation.yaml"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", metavar="REV", help="also time git revision REV's generator")
    args = parser.parse_args()
    from mtl_core.sources import SyntheticSource
    from mtl_data.synthetic.write import synthetic_jobs

    knobs = source_of(args.spec)
    faces = sum(n for _, _, n in synthetic_jobs(SyntheticSource(**knobs)))
    print(f"{faces} faces ({knobs}); {os.cpu_count()} CPUs; {args.rounds} alternating rounds")
    with worktree(args.before) if args.before else nullcontext() as old:
        codes = ([(f"before: {args.before}", old)] if old else []) + [("this checkout", REPO)]
        for workers in args.workers:
            times: dict[str, list[float]] = {name: [] for name, _ in codes}
            digests: dict[str, set[str]] = {name: set() for name, _ in codes}
            for _ in range(args.rounds):
                for name, tree in codes:
                    got = measure(tree, knobs, workers)
                    times[name].append(got["seconds"])
                    digests[name].add(got["digest"])
            for name, _ in codes:
                med = statistics.median(times[name])
                runs = ", ".join(f"{t:.2f}" for t in times[name])
                print(f"  {workers} worker(s), {name}: {runs} s; median {faces / med:.0f} faces/s")
            if old:
                ratio = statistics.median(times[codes[0][0]]) / statistics.median(
                    times["this checkout"]
                )
                same = digests[codes[0][0]] == digests["this checkout"]
                print(f"  {workers} worker(s): speed-up {ratio:.2f}x; same bytes: {same}")


if __name__ == "__main__":
    main()
