"""The fault table of issue 32: each fault injected into a real sweep, and what was left.

Every row runs `mtl-sweep run sweeps/smoke.yaml` with two ResNet-18 trials of six rounds
and `failure.retries=1` (SWEEP below) in a sandbox of its own (sqlite store, cache, Ray
temp dir), injects one fault once the first checkpoint is written, and reads MLflow
afterwards:

- exit: the driver's exit code (of the run after the fault, where the row has two);
- lost: trials without a FINISHED run; duplicate FINISHED: trials with more than one;
- left RUNNING: runs still RUNNING when the driver is gone;
- steps logged twice: (run, metric, step) triples with more than one value;
- time: from the fault to the driver's exit (give up), or the sweep's wall time minus a
  clean sweep's (recover), as the row says.

    python benchmarks/fault_table.py [--rows worker-crash,kill-in-save,...] [--deadline 10]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mtl_core import contract as C  # noqa: E402
from tests.e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint  # noqa: E402
from tests.mlflow_server import MlflowServer  # noqa: E402

SWEEP = (
    *("--set", "grid.pretrain=[none]", "--set", "train.epochs=6"),
    *("--set", "grid.backbone=resnet18", "--set", "failure.retries=1"),
)
SHOWN = "mtl-sweep run sweeps/smoke.yaml --set grid.pretrain=[none] --set train.epochs=6 " + (
    "--set grid.backbone=resnet18 --set failure.retries=1"
)


def state(uri: str, cache: Path) -> dict[str, int]:
    """Lost (no FINISHED run and no checkpoint to resume from), duplicate FINISHED, left
    RUNNING and steps logged twice, read from MLflow and the cache."""
    from mlflow import MlflowClient

    every = runs(uri, "smoke")
    trials = [r for r in every if r.data.tags.get(C.KIND) == C.KIND_TRIAL]
    keys = {r.data.tags[C.KEY] for r in trials}
    finished = Counter(r.data.tags[C.KEY] for r in trials if r.info.status == "FINISHED")
    kept = {p.parent.name for p in (cache / "checkpoints").glob("*/*/*/resume.pt")}
    client = MlflowClient(uri)
    twice = 0
    for run in trials:
        for key in run.data.metrics:
            steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
            twice += sum(1 for n in steps.values() if n > 1)
    return {
        "lost": len(keys - set(finished) - kept) + max(0, 2 - len(keys)),
        "duplicate FINISHED": sum(1 for n in finished.values() if n > 1),
        "left RUNNING": sum(1 for r in every if r.info.status == "RUNNING"),
        "steps logged twice": twice,
    }


def timed_run(box: Sandbox, *args: str, **env: str) -> tuple[int, float, str]:
    started = time.monotonic()
    done = box.cli("run", SMOKE, *args, timeout=1200, **env)
    return done.returncode, time.monotonic() - started, done.stdout + done.stderr


def baseline(root: Path) -> float:
    box = Sandbox(root)
    try:
        code, took, out = timed_run(box, *SWEEP)
        assert code == 0, out
        return took
    finally:
        stop_ray_under(box.ray_tmp)


def worker_crash(root: Path, clean_s: float, deadline: int) -> dict:
    """SIGKILL a trial's worker process (ray::ImplicitFunc) after its first checkpoint."""
    box = Sandbox(root)
    started = time.monotonic()
    driver = box.popen("run", SMOKE, *SWEEP)
    try:
        wait_for_checkpoint(box, driver)
        (victim, *_) = [
            p
            for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[0].startswith("ray::ImplicitFunc")
            and box.ray_tmp in " ".join(p.parent().cmdline())
        ]
        victim.send_signal(signal.SIGKILL)
        driver.communicate(timeout=1200)
    finally:
        stop_ray_under(box.ray_tmp)
    took = time.monotonic() - started
    return {
        "exit": driver.returncode,
        **state(box.uri, root / "cache"),
        "time": f"recovered: +{took - clean_s:.0f}s over a clean sweep",
    }


def kill_in_save(root: Path, clean_s: float, deadline: int) -> dict:
    """MTL_SWEEP_DEBUG_KILL_IN_SAVE=1: each trial dies half-way through round 1's save."""
    box = Sandbox(root)
    try:
        code, took, _ = timed_run(box, *SWEEP, MTL_SWEEP_DEBUG_KILL_IN_SAVE="1")
    finally:
        stop_ray_under(box.ray_tmp)
    figures = state(box.uri, root / "cache")
    return {"exit": code, **figures, "time": f"recovered: +{took - clean_s:.0f}s"}


def new_store(root: Path, clean_s: float, deadline: int) -> dict:
    """Ctrl-C after the first checkpoint, delete mlflow.db, run again with the same cache."""
    box = Sandbox(root)
    driver = box.popen("run", SMOKE, *SWEEP)
    try:
        wait_for_checkpoint(box, driver)
        driver.send_signal(signal.SIGINT)
        driver.communicate(timeout=300)
    finally:
        stop_ray_under(box.ray_tmp)
    box.db.unlink()
    shutil.rmtree(root / "mlartifacts", ignore_errors=True)
    try:
        code, took, out = timed_run(box, *SWEEP)
    finally:
        stop_ray_under(box.ray_tmp)
    warned = "discarded" in out
    return {
        "exit": code,
        **state(box.uri, root / "cache"),
        "time": f"recovered: the next run took {took:.0f}s (clean {clean_s:.0f}s)"
        + ("" if warned else "; NO WARNING"),
    }


def store_down(root: Path, clean_s: float, deadline: int) -> dict:
    """A real mlflow server SIGKILLed for good after the first checkpoint."""
    server, box = MlflowServer(root), Sandbox(root)
    env = {"MLFLOW_TRACKING_URI": server.uri, "MTL_SWEEP_STORE_DEADLINE_S": str(deadline)}
    try:
        server.start()
        driver = box.popen("run", SMOKE, *SWEEP, **env)
        wait_for_checkpoint(box, driver)
        server.kill()
        killed = time.monotonic()
        out, _ = driver.communicate(timeout=deadline * 2 + 600)
        gave_up = time.monotonic() - killed
        stop_ray_under(box.ray_tmp)
        server.start()
        after_outage = state(server.uri, root / "cache")
        code, _, _ = timed_run(box, *SWEEP, **env)
        stop_ray_under(box.ray_tmp)
        final = state(server.uri, root / "cache")
    finally:
        server.kill()
        stop_ray_under(box.ray_tmp)
    warned = sum("unreachable since" in ln and "warning" in ln for ln in out.splitlines())
    return {
        "exit": f"{driver.returncode}, then {code}",
        **{k: f"{after_outage[k]} -> {final[k]}" for k in final},
        "time": f"gave up {gave_up:.0f}s after the outage (bound {deadline * 2 + 120}s, "
        f"deadline {deadline}s x 2 attempts + 2 min); {warned} warning line",
    }


def second_ctrl_c(root: Path, clean_s: float, deadline: int) -> dict:
    """Two SIGINTs 2 s apart after the first checkpoint."""
    box = Sandbox(root)
    driver = box.popen("run", SMOKE, *SWEEP)
    try:
        wait_for_checkpoint(box, driver)
        driver.send_signal(signal.SIGINT)
        time.sleep(2)
        second = time.monotonic()
        driver.send_signal(signal.SIGINT)
        driver.communicate(timeout=300)
        took = time.monotonic() - second
    finally:
        stop_ray_under(box.ray_tmp)
    every = runs(box.uri, "smoke")
    statuses = Counter(r.info.status for r in every if r.data.tags.get(C.KIND) == C.KIND_TRIAL)
    return {
        "exit": driver.returncode,
        **state(box.uri, root / "cache"),
        "time": f"aborted {took:.1f}s after the second SIGINT; trial runs {dict(statuses)}",
    }


ROWS: dict[str, tuple[str, Callable[[Path, float, int], dict]]] = {
    "worker-crash": ("a trial's worker SIGKILLed", worker_crash),
    "kill-in-save": ("a worker killed inside its checkpoint save", kill_in_save),
    "new-store": ("an old cache with a new store (mlflow.db deleted)", new_store),
    "store-down": ("the tracking server killed for good", store_down),
    "second-ctrl-c": ("a second Ctrl-C", second_ctrl_c),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--deadline", type=int, default=10, help="MTL_SWEEP_STORE_DEADLINE_S")
    parser.add_argument("--clean-s", type=float, help="a clean sweep's seconds (skip measuring)")
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory(prefix="faults") as tmp:
        (Path(tmp) / "baseline").mkdir()
        clean_s = args.clean_s or baseline(Path(tmp) / "baseline")
        print(f"clean sweep: {clean_s:.0f}s", flush=True)
        for name in args.rows.split(","):
            fault, row = ROWS[name]
            (Path(tmp) / name).mkdir()
            figures = row(Path(tmp) / name, clean_s, args.deadline)
            table.append({"fault": fault, **figures})
            print(table[-1], flush=True)
    print(pd.DataFrame(table).to_markdown(index=False))
    print(f"\nthe sweep: {SHOWN}")


if __name__ == "__main__":
    main()
