"""Benchmark the data layer (a script, not a test): run `python benchmarks/bench_data.py`.

1. One epoch from the decoded cache against one epoch decoding the JPEGs (open, decode,
   crop, resize, batch: what a plain image-folder loader does in the training process),
   over the same images, as a ratio. Target: at least 10x.
2. The fraction of a CPU training step spent waiting for the next batch: torchvision's
   resnet18, batch 32, a three-source multi-task batch (ChaLearn, CelebA and FER2013
   twins), at 32x32 and 48x48, with 1 and 2 torch threads. Target: under 10%.

The data are synthetic faces written in the real formats; the JPEG-decoding epoch is run
for the generator's own small JPEGs and for CelebA-sized ones (178x218).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from tabulate import tabulate

from mtl_data.cache import load_split
from mtl_data.decode import decode_file
from mtl_data.loaders import get_loader
from mtl_data.source import resolve_source
from trainables.augmentation import augment
from trainables.batches import MultiSourceBatches


def jpeg_epoch(paths: list[str], size: int, batch: int) -> float:
    """Seconds for one pass that decodes every JPEG and stacks batches of uint8 tensors."""
    t0 = time.perf_counter()
    for start in range(0, len(paths), batch):
        arrays = [decode_file(p, None, size)[0] for p in paths[start : start + batch]]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        assert x.dtype == torch.uint8
    return time.perf_counter() - t0


def cache_epoch(split, batch: int) -> float:
    """Seconds for one pass over the cached split with MultiSourceBatches."""
    t0 = time.perf_counter()
    for b in MultiSourceBatches([(split, ("gender", "smile"))], batch, "longest", 0).epoch(0):
        assert b.images.dtype == torch.uint8
    return time.perf_counter() - t0


def upsized_copy(src_root: Path, dst_root: Path, side: tuple[int, int]) -> None:
    """A CelebA-format copy whose JPEGs are resized to `side` (W, H), e.g. CelebA's 178x218."""
    shutil.copytree(src_root, dst_root, ignore=shutil.ignore_patterns("*.jpg"))
    for path in (src_root / "img_align_celeba").glob("*.jpg"):
        with Image.open(path) as img:
            img.resize(side, Image.Resampling.BICUBIC).save(
                dst_root / "img_align_celeba" / path.name, quality=90
            )


def bench_epochs(cache: Path, train: int, size: int, batch: int) -> list[tuple]:
    """Part 1: cache vs JPEG epochs, for the synthetic JPEGs and CelebA-sized ones."""
    source = {"kind": "synthetic", "train": train, "val": 32, "test": 32, "pretrain": 32}
    celeba = resolve_source(source, "gender", cache)
    big_root = cache / "celeba-178x218"
    if not big_root.exists():
        upsized_copy(Path(celeba.root), big_root, (178, 218))
    rows = []
    for label, root in (("synthetic 64x78", Path(celeba.root)), ("CelebA-sized 178x218", big_root)):
        src = resolve_source({"kind": "celeba", "root": str(root)}, "gender", cache)
        split = load_split(src, "train", size, cache)  # builds the cache once
        manifest = get_loader("celeba").read(root, src.opts)["train"]
        jpeg = min(jpeg_epoch(manifest.images, size, batch) for _ in range(2))
        cached = min(cache_epoch(split, batch) for _ in range(3))
        rows.append(
            (label, len(split), size, f"{jpeg:.3f}", f"{cached:.4f}", f"{jpeg / cached:.0f}x")
        )
    return rows


def bench_steps(cache: Path, train: int, sizes: list[int], threads: list[int], steps: int) -> list:
    """Part 2: the share of a resnet18 training step spent waiting for data."""
    source = {"kind": "synthetic", "train": train, "val": 32, "test": 32, "pretrain": 32}
    rows = []
    for size in sizes:
        parts = []
        for role, tasks in (
            ("age", ("age",)),
            ("gender", ("gender", "smile")),
            ("emotion", ("emotion",)),
        ):
            src = resolve_source(source, role, cache)
            parts.append((load_split(src, "train", size, cache), tasks))
        batches = MultiSourceBatches(parts, 32, "longest", seed=0)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            torch.manual_seed(0)
            model = torchvision.models.resnet18(num_classes=12)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            data_s = total_s = 0.0
            done = 0
            epoch = 0
            while done < steps + 3:
                it = iter(batches.epoch(epoch))
                while done < steps + 3:
                    t0 = time.perf_counter()
                    b = next(it, None)
                    t1 = time.perf_counter()
                    if b is None:
                        break
                    x = augment(b.images.float().div_(255), gen, True, (0.8, 1.0), (0.9, 1.1))
                    loss = model(x).square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    t2 = time.perf_counter()
                    if done >= 3:  # skip warm-up steps
                        data_s += t1 - t0
                        total_s += t2 - t0
                    done += 1
                epoch += 1
            step = total_s / steps
            rows.append(
                (
                    size,
                    n_threads,
                    f"{step * 1000:.0f}",
                    f"{1e3 * data_s / steps:.2f}",
                    f"{100 * data_s / total_s:.2f}%",
                )
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=2048, help="images per synthetic train split")
    ap.add_argument("--size", type=int, default=32, help="decoded side for the epoch benchmark")
    ap.add_argument("--step-sizes", type=int, nargs="+", default=[32, 48])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per setting")
    ap.add_argument("--cache-dir", type=Path, default=None, help="default: a temporary folder")
    a = ap.parse_args()
    cache = a.cache_dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    try:
        epochs = bench_epochs(cache, a.train, a.size, 32)
        print("\n1. One epoch, batch 32: decoding JPEGs vs reading the cache (target >= 10x)")
        headers = ("JPEGs", "images", "side", "JPEG epoch s", "cache epoch s", "speed-up")
        print(tabulate(epochs, headers=headers))
        step_rows = bench_steps(cache, 512, a.step_sizes, a.threads, a.steps)
        print("\n2. resnet18 CPU training step, batch 32 from 3 sources (target: data < 10%)")
        headers = ("side", "threads", "step ms", "data ms", "data share")
        print(tabulate(step_rows, headers=headers))
    finally:
        if a.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
