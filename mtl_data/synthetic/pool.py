"""Render synthetic faces on every core: chunks of one (format, split) in worker processes.

Each face's randomness is seeded from (seed, format, split, index) alone, and each chunk
writes its own image files, so the chunks can run in any order, in any process: the
results are put back in index order and the bytes are the same as a serial run's.

Workers are *spawned* (never forked): the caller may already run threads (a Ray driver
starting up, torch), and a forked child of a threaded process can deadlock. A spawned
worker imports only this package (numpy, PIL, pydantic), about half a second each, so small
jobs stay in this process. As with any spawned pool, a script that generates data
must guard its entry point (`if __name__ == "__main__":`): workers import the main
module. The CLI, the benchmarks, pytest and Ray's workers do.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from mtl_core.sources import SyntheticSource
from mtl_data.parallel import default_workers
from mtl_data.progress_bar import Bar

CHUNK = 64  # faces per task: small enough to balance, large enough to amortise the hand-off
MIN_PARALLEL = 512  # below this many faces, spawning workers costs more than it saves
POLL_S = 0.2  # how often a pool checks for a stop request
NICE = 10  # renderers yield the cores to the rest of a starting sweep (see _start_worker)

Job = tuple[str, str, int]  # (format, split, number of faces)
Rows = list[tuple[Any, Any]]  # per face: its Record and its row for the label file
Render = Callable[[str, str, int, int, SyntheticSource, Path], Rows]  # one chunk's faces


class Stopped(Exception):
    """Rendering was asked to stop (the caller is giving up, e.g. on an error)."""


UNGUARDED = (
    "synthetic faces render in spawned worker processes, which import the main script "
    'again: guard the script\'s entry point with `if __name__ == "__main__":`'
)


def refuse_in_spawned_import() -> None:
    """Raise when called by a spawned worker still importing its parent's main script.

    Such a call comes from a script without a main guard. Left alone it would wait for
    the data its parent is building (and holds the lock of) while the parent waits for
    it: a hang instead of an error.
    """
    # multiprocessing's spawn sets this while the child imports the parent's main module.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(UNGUARDED)


def render_jobs(
    jobs: list[Job],
    render: Render,
    source: SyntheticSource,
    out: Path,
    bar: Bar,
    workers: int | None = None,
    stop: threading.Event | None = None,
) -> dict[tuple[str, str], Rows]:
    """Render every job's faces into `out`; returns each (format, split)'s rows in order.

    render: draws one chunk, `render(fmt, split, start, stop, source, out)`; a module-level
    function, so that spawned workers can import it by name.

    workers: processes to use; None means every core when there are at least
    MIN_PARALLEL faces, else this process alone.
    stop: when set (from another thread), raise Stopped after the chunks in flight.
    """
    refuse_in_spawned_import()
    stop = stop or threading.Event()
    total = sum(n for _, _, n in jobs)
    if workers is None:
        workers = default_workers() if total >= MIN_PARALLEL else 1
    chunks = [
        (fmt, split, start, min(start + CHUNK, n))
        for fmt, split, n in jobs
        for start in range(0, n, CHUNK)
    ]
    done: dict[int, Rows] = {}
    if workers <= 1 or len(chunks) <= 1:
        for i, chunk in enumerate(chunks):
            if stop.is_set():
                raise Stopped("synthetic faces: stopped")
            done[i] = render(*chunk, source, out)
            bar.update(chunk[3] - chunk[2])
    else:
        done = _in_processes(chunks, render, source, out, bar, min(workers, len(chunks)), stop)
    results: dict[tuple[str, str], Rows] = {(fmt, split): [] for fmt, split, _ in jobs}
    for i, (fmt, split, _, _) in enumerate(chunks):  # chunks are in job, then index order
        results[fmt, split].extend(done[i])
    return results


def _in_processes(
    chunks: list[tuple[str, str, int, int]],
    render: Render,
    source: SyntheticSource,
    out: Path,
    bar: Bar,
    workers: int,
    stop: threading.Event,
) -> dict[int, Rows]:
    """Render the chunks in `workers` spawned processes; returns rows by chunk index."""
    ctx = multiprocessing.get_context("spawn")
    done: dict[int, Rows] = {}
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker)
    try:
        pending: dict[Future, int] = {
            pool.submit(render, *chunk, source, out): i for i, chunk in enumerate(chunks)
        }
        while pending:
            if stop.is_set():
                raise Stopped("synthetic faces: stopped")
            finished, _ = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                try:
                    done[i] = future.result()
                except BrokenProcessPool as exc:
                    raise RuntimeError(
                        f"a synthetic-face worker process died ({exc}): killed, out of "
                        f"memory, or {UNGUARDED}"
                    ) from None
                bar.update(chunks[i][3] - chunks[i][2])
    finally:
        # On an error or Ctrl-C, drop the queued chunks instead of rendering them all.
        pool.shutdown(wait=True, cancel_futures=True)
    return done


def _start_worker() -> None:
    """Leave Ctrl-C to the parent, which cancels the pool (no tracebacks per worker), and
    take only the CPU nothing else wants.

    `mtl-sweep run` renders while its driver imports MLflow and starts Ray and Tune, and
    while the first actors import torch: that chain, not the faces, is what the first
    trial waits for on a small machine (benchmarks/bench_orchestration.py --cold), and
    renderers at the same priority would halve its share of the cores.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        os.nice(NICE)
