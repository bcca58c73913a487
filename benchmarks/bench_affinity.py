"""Step time with TAG's lookahead affinity (train.affinity.every) vs without, in one process.

Both sides run `train_one_epoch` on the same four-task network, optimizer (fused AdamW, as
the trainable builds it), in-memory batches and thread count; the only difference is the
probe. Rounds alternate (without, with, without, ...) so a busy machine slows both alike,
and the figure is the ratio of median step times. Target at every=10 for four tasks: <= 1.15.

    python benchmarks/bench_affinity.py [--every 10] [--params trunk|last_shared]
        [--image-size 32] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtl_core.tasks import NUM_CLASSES, TASKS
from trainables.affinity import SCOPES, AffinityProbe
from trainables.batches import Batch
from trainables.loop import train_one_epoch
from trainables.models import build_model
from trainables.step import StepContext
from trainables.trainable import resolve_device
from trainables.weighting import build_weighting


def batches(n: int, batch: int, size: int) -> list[Batch]:
    """n random batches where every image carries all four labels (one shared source)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        labels = {
            t: torch.randint(0, NUM_CLASSES.get(t, 2), (batch,), generator=g).float()
            for t in TASKS
            if t != "age"
        }
        labels["age"] = torch.rand(batch, generator=g) * 80
        out.append(
            Batch(
                images=torch.randint(
                    0, 256, (batch, 3, size, size), generator=g, dtype=torch.uint8
                ),
                labels=labels,
                mask={t: torch.ones(batch, dtype=torch.bool) for t in TASKS},
                age_std=torch.full((batch,), float("nan")),
            )
        )
    return out


def seconds_per_step(args: argparse.Namespace, every: int | None, rounds: int) -> list[float]:
    """Per-round mean step seconds; rounds of `args.steps` steps from one trained state."""
    device = resolve_device("auto", 1)
    torch.manual_seed(0)
    model = build_model(args.backbone, TASKS, image_size=args.image_size).to(device)
    weighting = build_weighting("fixed", TASKS, dict.fromkeys(TASKS, 1.0), {})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type in ("cpu", "cuda"))
    ctx = StepContext(device, amp=device.type == "cuda")
    data = batches(args.steps, args.batch_size, args.image_size)
    probe = AffinityProbe(every, TASKS, args.params) if every else None
    train_one_epoch(model, data[:3], weighting, opt, ctx)  # warm-up: allocator, state
    times = []
    for r in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_one_epoch(model, data, weighting, opt, ctx, r, affinity=probe)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / args.steps)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--params", choices=SCOPES, default="trunk", help="train.affinity.params")
    parser.add_argument("--steps", type=int, default=40, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.steps % args.every:
        parser.error("--steps must be a multiple of --every, so each round measures evenly")
    torch.set_num_threads(args.threads)
    plain, probed = [], []
    for _ in range(args.rounds):  # alternate, so load on the machine hits both sides
        plain += seconds_per_step(args, None, 1)
        probed += seconds_per_step(args, args.every, 1)
    base, with_probe = statistics.median(plain), statistics.median(probed)
    device = resolve_device("auto", 1)
    print(
        f"device: {device}, {args.backbone}, {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}, threads {args.threads}, four tasks, every {args.every}, "
        f"params {args.params}"
    )
    print(f"without affinity: {1000 * base:7.1f} ms/step (median of {args.rounds} rounds)")
    print(f"with affinity:    {1000 * with_probe:7.1f} ms/step")
    print(f"ratio with / without: {with_probe / base:.3f}  (target <= 1.15)")
    cost = (with_probe - base) * args.every / base  # one measurement, in plain steps
    print(f"one measurement costs {cost:.2f} plain steps; <= +15% from every >= {cost / 0.15:.0f}")


if __name__ == "__main__":
    main()
