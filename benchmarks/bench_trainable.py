"""Training images/s inside the trainable vs a bare PyTorch loop, in one process.

Both use the same network (build_model), batch size, image size and thread count. The
bare loop trains on tensors already in memory, with no masking, augmentation, metrics
or logging, so the ratio shows what the trainable's machinery costs. Target: >= 0.9.

On a CUDA device both sides use bf16 autocast + channels_last, so the ratio is the
trainable's data path against random tensors (target >= 0.9); it also prints bf16 +
channels_last against fp32. For the GPU check run:

    python benchmarks/bench_trainable.py --image-size 112 --batch-size 256 --train-images 8192

On the CPU:

    python benchmarks/bench_trainable.py [--image-size 32] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, trial_request
from mtl_sweep.spec.load import parse_spec
from mtl_sweep.store.tracker import Tracker
from trainables.models import build_model
from trainables.trainable import resolve_device, run_trial

SPEC = """
name: bench
data:
  age: &s {{kind: synthetic, train: {n}, val: 64, test: 64, seed: 0}}
  gender: *s
  emotion: *s
  smile: *s
train:
  epochs: {epochs}
  batch_size: {batch}
  image_size: {size}
  device: {device}
grid: {{tasks: [{tasks}], backbone: {backbone}}}
resources: {{cpu: {threads}}}
"""


def bare_loop(
    backbone: str, tasks, size: int, batch: int, steps: int, device, amp: bool, channels_last: bool
) -> float:
    """Images/s of a plain loop on in-memory random tensors."""
    model = build_model(backbone, tasks, image_size=size).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as the trainable
    x = torch.rand(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    targets = {t: torch.randint(0, 2, (batch,), device=device) for t in tasks}
    targets["age"] = torch.rand(batch, device=device) * 100

    def step() -> None:
        ctx = (
            torch.autocast("cuda", torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
        )
        with ctx:
            out = model(x)
        loss = sum(model.heads[t].loss(out[t], targets[t]) for t in tasks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def trainable_throughput(args, device_name: str, root: Path) -> dict[str, float]:
    """Run one trial through run_trial (no Ray) and read its per-epoch images/s."""
    tasks = "[age, gender, emotion, smile]"
    text = SPEC.format(
        n=args.train_images,
        epochs=args.epochs,
        batch=args.batch_size,
        size=args.image_size,
        device=device_name,
        tasks=tasks,
        backbone=args.backbone,
        threads=args.threads,
    )
    spec = parse_spec(text, "bench.yaml")
    plan = expand(spec)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment_id("bench", create=True)
    ctx = RunContext(spec, uri, exp, None, root / "cache")
    request = trial_request(plan.trials[0], ctx)
    # Warm the caches (synthetic generation, decoding) outside the measured run.
    one_epoch = request.config.train.model_copy(update={"epochs": 1})
    warm = replace(request, config=replace(request.config, train=one_epoch))
    run_trial(warm)
    run_trial(request)
    run = tracker.client.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
    hist = tracker.client.get_metric_history(run.info.run_id, "train/images_per_s")
    wait = tracker.client.get_metric_history(run.info.run_id, "train/data_wait_frac")
    steady = [m.value for m in sorted(hist, key=lambda m: m.step)][1:] or [hist[0].value]
    return {
        "images_per_s": sum(steady) / len(steady),
        "data_wait_frac": max(m.value for m in wait),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    tasks = ("age", "gender", "emotion", "smile")
    with tempfile.TemporaryDirectory() as tmp:
        inside = trainable_throughput(args, "auto", Path(tmp))
    steps = max(10, 2 * args.train_images // args.batch_size)
    cuda = device.type == "cuda"  # on CUDA both sides use bf16 autocast + channels_last
    bare = bare_loop(
        args.backbone,
        tasks,
        args.image_size,
        args.batch_size,
        steps,
        device,
        amp=cuda,
        channels_last=cuda,
    )
    print(
        f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})"
        f", {args.backbone}, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"threads {args.threads}"
    )
    print(f"bare loop:  {bare:8.1f} img/s")
    print(
        f"trainable:  {inside['images_per_s']:8.1f} img/s  (data wait "
        f"{100 * inside['data_wait_frac']:.1f}% of the epoch at most)"
    )
    print(f"ratio trainable / bare: {inside['images_per_s'] / bare:.3f}  (target >= 0.9)")
    if cuda:
        size, batch, steps = args.image_size, args.batch_size, 50
        fp32 = bare_loop(args.backbone, tasks, size, batch, steps, device, False, False)
        bf16 = bare_loop(args.backbone, tasks, size, batch, steps, device, True, True)
        print(
            f"{args.backbone} {size}x{size} batch {batch}: fp32 {fp32:.0f} img/s, "
            f"bf16+channels_last {bf16:.0f} img/s, speed-up {bf16 / fp32:.2f}x"
        )


if __name__ == "__main__":
    main()
