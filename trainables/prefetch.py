"""Batches gathered ahead of the model by background threads (`train.workers`).

A batch is built by a job (see `MultiSourceBatches.epoch_jobs` and `eval_jobs`): fancy
indexing into the memory-mapped cache, concatenation and the HWC -> CHW copy. numpy and
torch release the GIL for those copies, so N threads keep the next batches ready while the
training thread runs the model. On CUDA each batch is also copied into page-locked
(pinned) memory, so `tensor.to(device, non_blocking=True)` returns at once and the copy
overlaps the GPU's work.

Threads rather than processes: a batch is a few memcpys out of the page cache, and a
process would add a pickle round trip of the whole batch on top. Order is preserved: with
any number of workers the batch sequence is exactly that of `workers: 0`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

from trainables.batches import Batch

BatchJob = Callable[[], Batch]
BATCHES_PER_WORKER = 2  # look-ahead: batches in flight per worker (each ~B*3*H*W bytes)


def pin_batch(batch: Batch) -> Batch:
    """The batch with every tensor in page-locked memory (needs CUDA)."""
    return Batch(
        images=batch.images.pin_memory(),
        labels={t: v.pin_memory() for t, v in batch.labels.items()},
        mask={t: v.pin_memory() for t, v in batch.mask.items()},
        age_std=batch.age_std.pin_memory(),
    )


def prefetch(jobs: Iterable[BatchJob], workers: int, pin: bool = False) -> Iterator[Batch]:
    """Run `jobs` in order and yield their batches.

    workers == 0: each job runs in the calling thread when its batch is asked for, exactly
    as before this module existed (`pin` is ignored: nothing to overlap with).
    workers > 0: up to `workers * BATCHES_PER_WORKER` jobs run ahead on `workers` threads;
    with `pin` their batches land in pinned memory. Closing the iterator early (an
    exception in the training loop) cancels the jobs not yet started.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0:
        return (job() for job in jobs)
    return _ahead(iter(jobs), workers, pin)


def _ahead(jobs: Iterator[BatchJob], workers: int, pin: bool) -> Iterator[Batch]:
    def run(job: BatchJob) -> Batch:
        batch = job()
        return pin_batch(batch) if pin else batch

    with ThreadPoolExecutor(workers, thread_name_prefix="mtl-prefetch") as pool:
        pending: deque[Future[Batch]] = deque(
            pool.submit(run, job) for job in islice(jobs, workers * BATCHES_PER_WORKER)
        )
        try:
            while pending:
                batch = pending.popleft().result()
                job = next(jobs, None)
                if job is not None:
                    pending.append(pool.submit(run, job))
                yield batch
        finally:
            for future in pending:
                future.cancel()
