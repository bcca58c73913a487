"""The per-round resume checkpoint: seconds and bytes, as the trainable writes it vs a
baseline that copies the model and writes the best weights as a tensor set of their own.

A trial writes one after every round (`trainables.trainable._state`): the model, the
optimizer, the best-on-val weights and the RNG states. On the CPU the trainable writes
the model's own tensors (no copy), and after a round that improved on val the model and
the best weights are the same tensors, written once. Rounds alternate between the two
layouts, in one process, on ResNet-18 with AdamW (the default sweep's trunk).

    python benchmarks/bench_checkpoint.py [--backbone resnet18] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainables import checkpoint as ckpt
from trainables.models import build_model

TASKS = ("age", "gender", "emotion", "smile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a trial on one core
    model = build_model(args.backbone, TASKS, image_size=args.image_size)
    optimizer = torch.optim.AdamW(model.parameters())
    x = torch.randn(8, 3, args.image_size, args.image_size)
    sum(out.float().sum() for out in model(x).values()).backward()
    optimizer.step()  # the optimizer's moments exist, as after a round
    best = ckpt.cpu_state(model)  # the best weights, kept by the trial

    def baseline() -> dict:
        return {"model": ckpt.cpu_state(model), "optimizer": optimizer.state_dict(), "best": best}

    def improved() -> dict:  # the round improved: the best weights are the model's
        return {"model": best, "optimizer": optimizer.state_dict(), "best": best}

    def other() -> dict:  # it did not: the model's own tensors, not copied
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best": best}

    layouts = {
        "baseline (copy, best apart)": baseline,
        "improved round": improved,
        "other round": other,
    }
    seconds: dict[str, list[float]] = {name: [] for name in layouts}
    size: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resume.pt"
        for _ in range(args.rounds):
            for name, layout in layouts.items():
                start = time.perf_counter()
                ckpt.save(layout(), path)
                seconds[name].append(time.perf_counter() - start)
                size[name] = path.stat().st_size
    base = statistics.median(seconds["baseline (copy, best apart)"])
    print(f"{args.backbone}, {args.rounds} alternating rounds; median seconds per save:")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(
            f"  {name}: {median:.3f} s ({median / base:.2f}x the baseline), "
            f"{size[name] / 1e6:.0f} MB"
        )


if __name__ == "__main__":
    main()
