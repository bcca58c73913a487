"""Training images/s inside the trainable vs a bare PyTorch loop, in one process.

Both use the same network (build_model), batch size, image size and thread count. The
bare loop trains on random tensors already on the device, with no masking, augmentation,
metrics or logging, so the ratio shows what the trainable's machinery and data path cost.
Target: >= 0.9.

It also compares, each against a baseline measured in the same process:
- `--workers 0 2`: the trainable with train.workers 0 (baseline, the first value) and 2;
- `--compile`: the trainable with train.compile on vs off (at the last workers value);
- on CUDA: the bare loop in bf16 autocast + channels_last vs fp32.

On the CPU (the defaults):

    python benchmarks/bench_trainable.py [--workers 0 2] [--compile] [--threads 2]

On a GPU (what benchmarks/gpu_check.sh runs):

    python benchmarks/bench_trainable.py --image-size 112 --batch-size 256 \
        --train-images 1024 --epochs 6 --workers 0 4 --compile
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, trial_request
from mtl_sweep.spec.load import parse_spec
from mtl_sweep.store.tracker import Tracker
from trainables.models import build_model
from trainables.trainable import resolve_device, run_trial

TASKS = ("age", "gender", "emotion", "smile")
# Three synthetic datasets (ChaLearn-, CelebA- and FER-format), each `train` images; the
# per_epoch budget with the "sum" rule makes an epoch (one measured round) a pass over all
# of them, `batch_size` images per step.
SPEC = """
name: bench
data:
  age: &s {{kind: synthetic, train: {n}, val: 64, test: 64, pretrain: 16, seed: 0}}
  gender: *s
  emotion: *s
  smile: *s
  epoch_rule: sum
train:
  budget: {{rule: per_epoch}}
  epochs: {epochs}
  batch_size: {batch}
  image_size: {size}
  device: {device}
  workers: {workers}
{compile}grid: {{tasks: [[age, gender, emotion, smile]], backbone: {backbone}}}
resources: {{cpu: {threads}, gpu: {gpu}}}
"""


@dataclass
class BenchConfig:
    """One benchmark's settings, as plain values."""

    backbone: str = "resnet18"
    image_size: int = 32
    batch_size: int = 32
    threads: int = 2
    train_images: int = 512  # per synthetic dataset (three of them)
    epochs: int = 3  # the first is warm-up; images/s is the mean of the others
    device: str = "auto"
    workers: list[int] = field(default_factory=lambda: [0])
    compile: bool = False
    cache: str | None = None  # decoded-cache folder to reuse across runs; None = a temp one
    repeat: int = 1  # trainable runs per workers value, interleaved; the median counts


def bare_loop(cfg: BenchConfig, device: torch.device, amp: bool, compile: bool = False) -> float:
    """Images/s of a plain loop on random tensors on the device (channels_last with amp)."""
    size, batch = cfg.image_size, cfg.batch_size
    model = build_model(cfg.backbone, TASKS, image_size=size).to(device)
    if amp:
        model.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as the trainable
    x = torch.rand(batch, 3, size, size, device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    targets = {t: torch.randint(0, 2, (batch,), device=device) for t in TASKS}
    targets["emotion"] = torch.randint(0, 7, (batch,), device=device)
    targets["age"] = torch.rand(batch, device=device) * 100

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=amp and device.type == "cuda"):
            out = model(x)
        loss = sum(model.heads[t].loss(out[t], targets[t]) for t in TASKS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    steps = max(10, (cfg.epochs - 1) * 3 * cfg.train_images // batch)
    for _ in range(3):  # warm-up (and compilation)
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainable_run(cfg: BenchConfig, root: Path, workers: int, compile: bool = False) -> dict:
    """One trial through run_trial (no Ray); its steady per-epoch images/s and data wait."""
    text = SPEC.format(
        n=cfg.train_images,
        epochs=cfg.epochs,
        batch=cfg.batch_size,
        size=cfg.image_size,
        device=cfg.device,
        workers=workers,
        compile="  compile: true\n" if compile else "",  # absent: runs on older trees too
        backbone=cfg.backbone,
        threads=cfg.threads,
        gpu=int(resolve_device(cfg.device, 1).type == "cuda"),  # the bench has the GPU to itself
    )
    spec = parse_spec(text, "bench.yaml")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment_id("bench", create=True)
    cache = Path(cfg.cache) if cfg.cache else root / "cache"  # shared by every run
    ctx = RunContext(spec, uri, exp, None, cache)
    run_trial(trial_request(expand(spec).trials[0], ctx))
    run = tracker.client.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
    history = {
        name: [
            m.value
            for m in sorted(
                tracker.client.get_metric_history(run.info.run_id, name), key=lambda m: m.step
            )
        ]
        for name in ("train/images_per_s", "train/data_wait_frac")
    }
    steady = history["train/images_per_s"][1:] or history["train/images_per_s"]
    return {
        "images_per_s": sum(steady) / len(steady),
        "data_wait_frac": max(history["train/data_wait_frac"][1:] or [0.0]),
    }


def _interleaved(cfg: BenchConfig, root: Path) -> dict[str, dict]:
    """Each workers value `repeat` times, round-robin (so a shared machine's load drifts
    over all of them alike); per value, the run with the median images/s."""
    samples: dict[int, list[dict]] = {w: [] for w in cfg.workers}
    for _ in range(cfg.repeat):
        for w in cfg.workers:
            samples[w].append(trainable_run(cfg, root, w))
    out = {}
    for w, runs in samples.items():
        runs.sort(key=lambda r: r["images_per_s"])
        out[f"workers={w}"] = {**runs[len(runs) // 2], "runs": [r["images_per_s"] for r in runs]}
    return out


def measure(cfg: BenchConfig, root: Path) -> dict[str, Any]:
    """Every comparison for one backbone; ratios are against a baseline run just before."""
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, 1)
    cuda = device.type == "cuda"
    out: dict[str, Any] = {
        "config": asdict(cfg),
        "device": torch.cuda.get_device_name(device) if cuda else device.type,
        "torch": torch.__version__,
    }
    warm = BenchConfig(**{**asdict(cfg), "epochs": 1})
    trainable_run(warm, root, cfg.workers[0])  # data generation, decoding, CUDA warm-up
    runs = _interleaved(cfg, root)
    out["trainable"] = runs
    base, last = runs[f"workers={cfg.workers[0]}"], runs[f"workers={cfg.workers[-1]}"]
    if len(cfg.workers) > 1:
        out["workers_speedup"] = last["images_per_s"] / base["images_per_s"]
    # On CUDA both sides use bf16 autocast + channels_last, as trials do by default.
    out["bare_images_per_s"] = bare_loop(cfg, device, amp=cuda)
    best = max(r["images_per_s"] for r in runs.values())
    out["ratio_trainable_vs_bare"] = best / out["bare_images_per_s"]
    if cuda:
        out["bare_fp32_images_per_s"] = bare_loop(cfg, device, amp=False)
        out["bf16_channels_last_speedup"] = out["bare_images_per_s"] / out["bare_fp32_images_per_s"]
    if cfg.compile:
        key = f"workers={cfg.workers[-1]},compile"
        runs[key] = trainable_run(cfg, root, cfg.workers[-1], compile=True)
        out["compile_speedup"] = runs[key]["images_per_s"] / last["images_per_s"]
    return out


def report(result: dict[str, Any]) -> str:
    """The measured figures as lines of text."""
    cfg = result["config"]
    lines = [
        f"device: {result['device']} (torch {result['torch']}), {cfg['backbone']}, "
        f"{cfg['image_size']}x{cfg['image_size']}, batch {cfg['batch_size']}, "
        f"threads {cfg['threads']}",
        f"bare loop (random tensors): {result['bare_images_per_s']:8.1f} img/s",
    ]
    for name, run in result["trainable"].items():
        lines.append(
            f"trainable {name:<18} {run['images_per_s']:8.1f} img/s  "
            f"(data wait {100 * run['data_wait_frac']:.1f}% of an epoch at most)"
        )
    lines.append(
        f"ratio trainable / bare: {result['ratio_trainable_vs_bare']:.3f}  (target >= 0.9)"
    )
    for key, text in (
        ("workers_speedup", "workers last / first"),
        ("bf16_channels_last_speedup", "bf16 + channels_last / fp32 (bare loop)"),
        ("compile_speedup", "compile on / off (trainable)"),
    ):
        if key in result:
            lines.append(f"{text}: {result[key]:.3f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, Path | None]:
    """The command line as a BenchConfig, plus where to write JSON (or None)."""
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default=d.backbone)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--train-images", type=int, default=d.train_images)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--device", default=d.device)
    p.add_argument("--workers", type=int, nargs="+", default=d.workers)
    p.add_argument("--compile", action="store_true", help="also train.compile on vs off")
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    p.add_argument("--cache", default=None, help="reuse this data cache (default: a temp one)")
    p.add_argument("--repeat", type=int, default=1, help="trainable runs per workers value")
    a = p.parse_args(argv)
    if a.epochs < 2:
        p.error("--epochs must be >= 2 (the first epoch is warm-up)")
    cfg = BenchConfig(
        a.backbone, a.image_size, a.batch_size, a.threads, a.train_images, a.epochs,
        a.device, a.workers, a.compile, a.cache, a.repeat,
    )  # fmt: skip
    return cfg, a.json


def main() -> None:
    cfg, json_path = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(cfg, Path(tmp))
    print(report(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
