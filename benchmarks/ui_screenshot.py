"""Where the MLflow UI lands, checked in a real headless Chromium.

Makes a tiny store the way `mtl-sweep run` does (the experiment created and tagged by
Tracker, a sweep run with two trial runs under it), serves it with `mlflow ui` on a free
loopback port, and opens two pages:

    default  #/experiments/<id>         what a plain link to the experiment shows
    printed  the runs-view URL that `mtl-sweep run` prints at the end (ui_link.py)

For each it saves a screenshot and says whether the sweep's run is in the rendered page
(the runs table) or not (MLflow 3's GenAI overview). Skips, saying why, when no Chromium
is installed (`apt-get install chromium`).

    python benchmarks/ui_screenshot.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SERVER_START_S = 600  # `mlflow ui` imports a lot; a busy 2-core machine needs minutes
# One worker, served in-process: uvicorn's multi-worker supervisor kills a worker that is
# still importing after its 5 s health check, over and over, on a loaded machine.
SERVER = ["mlflow", "ui", "--workers", "1", "--host", "127.0.0.1"]
RENDER_BUDGET_MS = 20_000  # virtual time the page gets to load its data before the shot
PAGE_S = 900  # wall-clock limit for one page: its JS bundle is large, the machine may be busy
SWEEP = "demo-sweep"  # the sweep run's name: in the page only when the runs table is shown


def make_store(db: Path) -> tuple[str, str]:
    """A sqlite store holding one sweep run and two trial runs; returns (uri, exp id)."""
    from mtl_core import contract as C
    from mtl_sweep.store.tracker import Tracker

    uri = f"sqlite:///{db}"
    tracker = Tracker(uri)
    exp_id = tracker.experiment_id("ui-check", create=True)
    sweep_id = tracker.sweep_run(exp_id, SWEEP)
    for task in ("age", "gender"):
        run = tracker.client.create_run(
            exp_id,
            run_name=f"resnet18/{task}/none/s0",
            tags={C.KIND: C.KIND_TRIAL, C.PARENT: sweep_id},
        )
        tracker.client.log_metric(run.info.run_id, "test/age_mae", 11.5)
        tracker.client.set_terminated(run.info.run_id)
    tracker.client.set_terminated(sweep_id)
    return uri, exp_id


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen, timeout: float) -> None:
    """Poll until `url` answers 200; raise if the server dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow ui exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"mlflow ui did not answer at {url} within {timeout:.0f} s")


def chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once (root needs --no-sandbox)."""
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"]
    base.append(f"--virtual-time-budget={RENDER_BUDGET_MS}")
    return subprocess.run(
        [*base, *args], capture_output=True, text=True, timeout=PAGE_S, check=False
    )


def check_page(browser: str, url: str, png: Path, needle: str) -> bool:
    """Screenshot `url` into `png`; True when the rendered page contains `needle`."""
    chromium(browser, f"--screenshot={png}", url)  # (with --dump-dom too, it can hang)
    if not png.is_file():
        raise SystemExit(f"chromium wrote no screenshot for {url}")
    return needle in chromium(browser, "--dump-dom", url).stdout


def stop(server: subprocess.Popen) -> None:
    """End the server and everything it started (SIGKILL if SIGTERM is not enough)."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the screenshots (default: tmp)")
    args = parser.parse_args()
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        print(f"skipped: no headless browser on PATH (tried {', '.join(BROWSERS)})")
        return

    from mtl_sweep.store.ui_link import runs_view_url

    tmp = Path(tempfile.mkdtemp(prefix="ui-check-"))
    out = Path(args.out) if args.out else tmp
    out.mkdir(parents=True, exist_ok=True)
    uri, exp_id = make_store(tmp / "mlflow.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = open(out / "mlflow_ui.log", "w")  # noqa: SIM115 (open while it runs)
    server = subprocess.Popen(
        [*SERVER, "--backend-store-uri", uri, "--port", str(port)],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its uvicorn workers go with it
    )
    try:
        wait_for(base + "/", server, SERVER_START_S)
        pages = {
            "default": f"{base}/#/experiments/{exp_id}",
            "printed": runs_view_url(base, exp_id),
        }
        for name, url in pages.items():
            png = out / f"ui_{name}.png"
            shows = check_page(browser, url, png, SWEEP)
            print(f"{name}: {url}\n  runs table shown: {shows}; screenshot {png}", flush=True)
    finally:
        stop(server)
        server_log.close()


if __name__ == "__main__":
    sys.exit(main())
