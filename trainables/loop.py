"""The training loop as plain functions: train_one_epoch and evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mtl_data.cache import CachedSplit
from trainables.affinity import AffinityProbe
from trainables.batches import Batch, eval_jobs
from trainables.metrics import SplitMetrics
from trainables.models.multitask import MultiTaskNet
from trainables.prefetch import prefetch
from trainables.step import StepContext, masked_losses, prepare_images
from trainables.weighting import Weighting


class NonFiniteLoss(RuntimeError):
    """A task's loss became NaN or Inf; the trial stops with this error."""


@dataclass
class EpochResult:
    """Mean losses over the epoch's images, and where the time went."""

    loss: float
    task_loss: dict[str, float]
    images: int
    seconds: float
    data_seconds: float  # time spent waiting for the next batch
    steps: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        """Training throughput over the epoch."""
        return self.images / self.seconds if self.seconds else 0.0


def train_one_epoch(
    model: MultiTaskNet,
    batches: Iterable[Batch],
    weighting: Weighting,
    optimizer: torch.optim.Optimizer,
    ctx: StepContext,
    epoch: int = 0,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    affinity: AffinityProbe | None = None,
) -> EpochResult:
    """One pass over `batches` (an epoch, or a stretch of steps), stepping the scheduler
    after every optimizer step. Raises NonFiniteLoss naming the task and the epoch.

    With `affinity`, its due steps also measure TAG's lookahead affinity (on copies, so
    the updates are the same as without it)."""
    # Over 60 lines on purpose: the step (forward, masked losses, backward, optimizer and
    # schedule) and its accounting (timing, loss sums) read best as one loop.
    model.train()
    sums: dict[str, Tensor] = {}  # task -> sum of loss x samples, kept on the device
    counts: dict[str, int] = {}
    total_sum = torch.zeros((), device=ctx.device)
    images = steps = 0
    data_seconds = 0.0
    start = time.perf_counter()
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        data_seconds += time.perf_counter() - t0
        if batch is None:
            break
        x = prepare_images(batch.images, ctx, train=True)
        with ctx.autocast():
            outputs = model(x)
        losses, n = masked_losses(model, outputs, batch, ctx.device)
        if not losses:
            continue
        if affinity is not None and affinity.due(steps):
            affinity.measure(model, x, batch, losses, optimizer, ctx)
        total = weighting.combine(losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward(retain_graph=weighting.retain_graph)
        weighting.after_backward(losses, model.shared_parameters())
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for task, loss in losses.items():
            sums[task] = sums.get(task, 0) + loss.detach() * n[task]
            counts[task] = counts.get(task, 0) + n[task]
        total_sum += total.detach() * x.shape[0]
        images += x.shape[0]
        steps += 1
    seconds = time.perf_counter() - start
    task_loss = {t: float(s) / counts[t] for t, s in sums.items()}
    bad = [t for t, v in task_loss.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLoss(
            f"loss of task {bad[0]} is {task_loss[bad[0]]} in epoch {epoch}; "
            "lower train.optimizer.lr or check the labels"
        )
    return EpochResult(
        loss=float(total_sum) / max(images, 1),
        task_loss=task_loss,
        images=images,
        seconds=seconds,
        data_seconds=data_seconds,
        steps=steps,
    )


@torch.no_grad()
def evaluate(
    model: MultiTaskNet,
    parts: Sequence[tuple[CachedSplit, tuple[str, ...]]],
    batch_size: int,
    ctx: StepContext,
    losses: bool = False,
) -> dict[str, float]:
    """Metrics per image over whole splits; parts: each source's split and its tasks.
    With `losses`, also each task's loss per labelled image (`<task>_loss`)."""
    model.eval()
    tasks = tuple(t for _, ts in parts for t in ts)
    acc = SplitMetrics(tasks)
    loss_sum: dict[str, float] = {}
    loss_n: dict[str, int] = {}
    # One job list across every part, so the workers run ahead over part boundaries too.
    jobs = [(ts, job) for split, ts in parts for job in eval_jobs(split, ts, batch_size)]
    batches = prefetch([job for _, job in jobs], ctx.workers, ctx.pin)
    for (part_tasks, _), batch in zip(jobs, batches, strict=True):
        x = prepare_images(batch.images, ctx, train=False)
        with ctx.autocast():
            outputs = model(x)
        preds = {t: model.heads[t].predict(outputs[t]).cpu() for t in part_tasks}
        acc.update(preds, batch.labels, batch.mask, batch.age_std)
        for task in part_tasks if losses else ():
            m = batch.mask[task]
            n = int(m.sum())
            if n:
                target = batch.labels[task].to(ctx.device)[m.to(ctx.device)]
                loss = model.heads[task].loss(outputs[task][m.to(ctx.device)], target)
                loss_sum[task] = loss_sum.get(task, 0.0) + float(loss) * n
                loss_n[task] = loss_n.get(task, 0) + n
    model.train()
    return {**acc.compute(), **{f"{t}_loss": loss_sum[t] / loss_n[t] for t in loss_sum}}
