"""The device check that benchmarks/gpu_check.sh runs: one JSON file of what a GPU does.

Steps, each timed and recorded even when it fails (the JSON is rewritten after each):
1. install: the wheels fetched by fetch_gpu_wheels.sh go into a fresh folder put first on
   sys.path, so mlflow, sqlalchemy, alembic and pydantic come from them and nothing else.
2. environment: versions, the device, where each of those modules came from; `ray` must
   not be importable (it is blocked below, as on the target, where it is not installed).
3. trial: one multi-task trial of sweeps/smoke.yaml, scaled up, through run_trial (no
   Ray) into a sqlite store, checked against the run contract.
4. bench:<backbone>: benchmarks/bench_trainable.py's comparisons (trainable vs random
   tensors, workers, bf16 + channels_last vs fp32 on CUDA).
5. compile:<backbone>: train.compile on vs off, last because compiling takes longest.

Steps that would start with less than their reserve of the time budget left are skipped.
"""

from __future__ import annotations

import sys

# Where this check runs, Ray is not installed; here it is, so block it: the whole path
# run_trial takes must work without it. (None in sys.modules makes `import ray` fail.)
sys.modules["ray"] = None  # type: ignore[assignment]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import zipfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FROM_WHEELS = ("mlflow", "sqlalchemy", "alembic", "pydantic", "pydantic_core")
OURS = ("mtl_sweep", "trainables")  # this checkout's, never an installed copy
# Sizes per mode: the GPU's real ones, and toy ones so that CI proves the script on a CPU.
MODES: dict[str, dict[str, Any]] = {
    "cuda": {
        "device": "cuda",
        "trial_image_size": 112,
        "trial_backbone": "resnet18",  # the model the bench measures, not smoke's tiny trunk
        "bench": {"image_size": 112, "batch_size": 256, "train_images": 1024, "epochs": 6},
        "workers": [0, 4],
        "threads": 4,
        "backbones": ["resnet18", "resnet50"],
        "compile": ["resnet18", "resnet50"],
    },
    "cpu": {
        "device": "cpu",
        "trial_image_size": 16,
        "trial_backbone": "shufflenet_v2_x0_5",  # smoke's own: the path, in seconds
        "bench": {"image_size": 16, "batch_size": 8, "train_images": 16, "epochs": 2},
        "workers": [0, 2],
        "threads": 2,
        "backbones": ["resnet18"],  # the same code path as ResNet-50, at a fraction of the time
        # torch.compile on the CPU builds C++ kernels for minutes; CI proves the rest of the
        # check, and tests/test_prefetch.py that train.compile is applied and logged.
        "compile": [],
    },
}
RESERVE_S = {"trial": 60, "bench": 60, "compile": 90}  # least time left to start a step


class Check:
    """Runs steps against a deadline and keeps the JSON file up to date."""

    def __init__(self, mode: str, out: Path, budget_s: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + budget_s
        self.path = out / "gpu_check.json"
        self.doc: dict[str, Any] = {
            "mode": mode,
            "budget_s": budget_s,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "steps": {},
            "ok": False,
        }

    def step(self, name: str, reserve_s: float, fn: Callable[[], dict[str, Any]]) -> dict | None:
        """Run fn() as step `name` unless less than reserve_s is left; record the outcome."""
        left = self.deadline - time.monotonic()
        if left < reserve_s:
            self.doc["steps"][name] = {"ok": False, "skipped": f"{left:.0f}s left of the budget"}
            self.save()
            return None
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            result = fn()
            record = {"ok": all(result.get("checks", {}).values()), **result}
        except Exception as exc:
            traceback.print_exc()
            result, record = None, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        record["seconds"] = round(time.monotonic() - t0, 1)
        self.doc["steps"][name] = record
        print(f"== {name}: {'ok' if record['ok'] else 'FAILED'} in {record['seconds']}s")
        self.save()
        return result

    def save(self) -> None:
        """Write the JSON (atomically: a kill at the time limit leaves the last good one)."""
        steps = self.doc["steps"].values()
        self.doc["ok"] = bool(steps) and all(s["ok"] for s in steps)
        self.doc["seconds"] = round(time.monotonic() - self.started, 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, default=str) + "\n")
        tmp.replace(self.path)


def install(wheels: Path, site: Path) -> dict[str, Any]:
    """Every wheel into `site` (no index, no dependency resolution: the set is complete)."""
    files = sorted(wheels.glob("*.whl"))
    if not files:
        raise FileNotFoundError(f"no wheels in {wheels}; run benchmarks/fetch_gpu_wheels.sh")
    site.mkdir(parents=True, exist_ok=True)
    try:
        import pip  # noqa: F401

        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
        cmd.append("--no-compile")  # bytecode is written on first import, for what is used
        subprocess.run([*cmd, "--target", str(site), *map(str, files)], check=True)
        how = "pip"
    except ImportError:  # no pip on the target: a wheel is a zip laid out for site-packages
        for f in files:
            zipfile.ZipFile(f).extractall(site)
        how = "unzip"
    sys.path.insert(0, str(site))
    mib = sum(f.stat().st_size for f in files) / 2**20
    return {"wheels": len(files), "mib": round(mib, 1), "installer": how}


def environment(site: Path, device_name: str) -> dict[str, Any]:
    """Versions, the device, and where the brought modules were imported from."""
    import importlib

    import torch

    origins = {m: importlib.import_module(m).__file__ for m in (*FROM_WHEELS, *OURS)}
    try:
        import ray  # noqa: F401

        ray_importable = True
    except ImportError:
        ray_importable = False
    cuda = device_name == "cuda"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "cpus": os.cpu_count(),
        "origins": origins,
        "checks": {
            **{f"{m} from the wheels": str(origins[m]).startswith(str(site)) for m in FROM_WHEELS},
            **{f"{m} from this tree": str(origins[m]).startswith(str(REPO)) for m in OURS},
            "ray not importable": not ray_importable,
            "device present": torch.cuda.is_available() if cuda else True,
        },
    }


def trial(mode: dict[str, Any], work: Path) -> dict[str, Any]:
    """One multi-task smoke trial, scaled up, through run_trial; checked against the contract."""
    import torch

    from mtl_core import contract as C
    from mtl_core.tasks import PRIMARY_METRIC
    from mtl_sweep.expand import expand
    from mtl_sweep.run.requests import RunContext, trial_request
    from mtl_sweep.spec.load import load_spec
    from mtl_sweep.store.tracker import Tracker
    from trainables.trainable import run_trial

    size, device = mode["trial_image_size"], mode["device"]
    overrides = [
        "grid.tasks=[all]",
        "grid.pretrain=[none]",
        f"grid.backbone={mode['trial_backbone']}",
        "train.epochs=3",
        f"train.image_size={size}",
        f"train.device={device}",
        f"resources.gpu={int(device == 'cuda')}",
        f"train.workers={mode['workers'][-1]}",
    ]
    spec = load_spec(REPO / "sweeps" / "smoke.yaml", overrides)
    (t,) = expand(spec).trials
    uri = f"sqlite:///{work / 'trial' / 'mlflow.db'}"
    (work / "trial").mkdir(parents=True, exist_ok=True)
    tracker = Tracker(uri)
    ctx = RunContext(spec, uri, tracker.experiment_id("gpu-check", create=True), None, work)
    os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "0.5"  # a short trial gets samples
    run_trial(trial_request(t, ctx))
    (run,) = tracker.client.search_runs([ctx.experiment_id])
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    tests = {k: v for k, v in metrics.items() if k.startswith(C.TEST)}
    want = "cuda" if device == "cuda" else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    system = sorted(
        k for k in metrics if k.startswith(f"system/{'gpu' if want == 'cuda' else 'cpu'}_")
    )
    checks = {
        "run FINISHED": run.info.status == "FINISHED",
        "mtl_sweep.device names the device": tags.get("mtl_sweep.device") == name,
        f"system/{'gpu' if want == 'cuda' else 'cpu'}_* metrics": bool(system),
        "a test metric per task": all(
            f"{C.TEST}{PRIMARY_METRIC[task].name}" in tests for task in t.config.tasks
        ),
        "test metrics finite": bool(tests) and all(math.isfinite(v) for v in tests.values()),
        "run.workers logged": params.get("run.workers") == str(mode["workers"][-1]),
    }
    if device == "cuda":
        checks["batches pinned"] = _pinned(work, size)
    return {"device_tag": tags.get("mtl_sweep.device"), "system_metrics": system,
            "test": tests, "checks": checks}  # fmt: skip


def _pinned(work: Path, size: int) -> bool:
    """Whether prefetched batches from the trial's cache land in pinned memory."""
    import numpy as np

    from mtl_data.cache import CachedSplit
    from trainables.batches import MultiSourceBatches
    from trainables.prefetch import prefetch

    images = np.zeros((8, size, size, 3), np.uint8)
    labels = {t: np.zeros(8, np.float32) for t in ("age", "gender", "emotion", "smile")}
    split = CachedSplit(images, labels, None, {"usable": 8, "dropped": {}})
    batches = MultiSourceBatches([(split, ("age",))], 4, "longest", seed=0)
    return all(b.images.is_pinned() for b in prefetch(batches.epoch_jobs(0), 2, pin=True))


def bench(mode: dict[str, Any], backbone: str, work: Path) -> dict[str, Any]:
    """bench_trainable's comparisons for one backbone."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_trainable import BenchConfig, measure

    cfg = BenchConfig(backbone=backbone, device=mode["device"], threads=mode["threads"],
                      workers=list(mode["workers"]), **mode["bench"])  # fmt: skip
    result = measure(cfg, work / "bench")
    result["targets"] = {"trainable / random tensors >= 0.9": result["ratio_trainable_vs_bare"]}
    return result


def compile_step(mode: dict[str, Any], backbone: str, work: Path, eager: dict | None):
    """train.compile on vs off, at the last workers value (off: from the bench step)."""
    from bench_trainable import BenchConfig, trainable_run

    cfg = BenchConfig(backbone=backbone, device=mode["device"], threads=mode["threads"],
                      workers=list(mode["workers"]), **mode["bench"])  # fmt: skip
    w = cfg.workers[-1]
    off = (eager or {}).get("trainable", {}).get(f"workers={w}") or trainable_run(
        cfg, work / "bench", w
    )
    on = trainable_run(cfg, work / "bench", w, compile=True)
    return {"off": off, "on": on, "compile_speedup": on["images_per_s"] / off["images_per_s"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(MODES), default="cuda")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--wheels", type=Path, default=REPO / ".whl")
    p.add_argument("--work", type=Path, required=True, help="scratch folder (deleted after)")
    p.add_argument("--budget", type=float, default=470.0, help="seconds for every step")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    mode, site = MODES[a.mode], a.work / "site"
    os.environ["MTL_SWEEP_CACHE"] = str(a.work / "cache")
    check = Check(a.mode, a.out, a.budget)
    if check.step("install", 0, lambda: install(a.wheels, site)) is None:
        return 1
    sys.path.insert(1, str(REPO))
    check.step("environment", 0, lambda: environment(site, mode["device"]))
    check.step("trial", RESERVE_S["trial"], lambda: trial(mode, a.work))
    benches = {}
    for b in mode["backbones"]:
        benches[b] = check.step(
            f"bench:{b}", RESERVE_S["bench"], lambda b=b: bench(mode, b, a.work)
        )
    for b in mode["compile"]:
        check.step(f"compile:{b}", RESERVE_S["compile"],
                   lambda b=b: compile_step(mode, b, a.work, benches.get(b)))  # fmt: skip
    print(json.dumps({k: v["ok"] for k, v in check.doc["steps"].items()}, indent=1))
    return 0 if check.doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
