"""A tracking server that goes away for good mid-sweep: bounded and visible (issue 32).

The trials give up within their deadline (MLflow's own HTTP retries included), the driver
says so in one line within a minute of the outage, and exits 3 within the deadline times
a trial's attempts plus two minutes. When the server is back, the next run takes the
dead driver's lease over, closes what it left RUNNING, and resumes every trial.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mtl_core import contract as C

from .e2e import SMOKE, Sandbox, runs, stop_ray_under, wait_for_checkpoint
from .mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

DEADLINE_S = 10  # $MTL_SWEEP_STORE_DEADLINE_S, the least it takes
RETRIES = 1
# Two trials of six one-step rounds each on ResNet-18: the server dies mid-sweep.
SWEEP = (
    *("--set", "grid.pretrain=[none]", "--set", "train.epochs=6"),
    *("--set", "grid.backbone=resnet18", "--set", f"failure.retries={RETRIES}"),
)


class Lines:
    """A process's output lines, each with the monotonic time it arrived."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(line for _, line in self.lines)


@contextmanager
def server_and_box(tmp_path: Path) -> Iterator[tuple[MlflowServer, Sandbox]]:
    server, box = MlflowServer(tmp_path), Sandbox(tmp_path)
    try:
        server.start()
        yield server, box
    finally:
        server.kill()
        stop_ray_under(box.ray_tmp)


def test_a_server_that_stays_down_is_given_up_in_one_line_and_exit_3(tmp_path):
    with server_and_box(tmp_path) as (server, box):
        env = {"MLFLOW_TRACKING_URI": server.uri, "MTL_SWEEP_STORE_DEADLINE_S": str(DEADLINE_S)}
        driver = box.popen("run", SMOKE, *SWEEP, **env)
        out = Lines(driver.stdout)
        try:
            try:
                wait_for_checkpoint(box, driver)
            except AssertionError:
                raise AssertionError(out.text()) from None
            server.kill()
            killed = time.monotonic()
            driver.wait(timeout=DEADLINE_S * (RETRIES + 1) + 120 + 60)
        finally:
            if driver.poll() is None:
                driver.kill()
        gave_up_s = time.monotonic() - killed
        text = out.text()
        assert driver.returncode == 3, text
        assert gave_up_s <= DEADLINE_S * (RETRIES + 1) + 120, text
        assert "Traceback" not in text
        said = [
            (t, ln) for t, ln in out.lines if "tracking store" in ln and "unreachable since" in ln
        ]
        assert len(said) == 2, text  # the warning, then the exit-3 line
        (t_warned, warning), (_, verdict) = said
        assert t_warned - killed <= 60, text
        assert "trials will fail after" in warning and verdict.startswith("error: ")
        print(f"server killed -> warning {t_warned - killed:.0f}s, exit 3 after {gave_up_s:.0f}s")

        # The server comes back; the next run takes the dead driver's lease over.
        server.start()
        stop_ray_under(box.ray_tmp)
        again = box.cli("run", SMOKE, *SWEEP, **env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "took over the sweep from a stale driver" in again.stdout
        every = runs(server.uri, "smoke")
        assert {r.info.status for r in every if r.data.tags[C.KIND] == C.KIND_SWEEP} == {"FINISHED"}
        trials = [r for r in every if r.data.tags[C.KIND] == C.KIND_TRIAL]
        finished = Counter(r.data.tags[C.KEY] for r in trials if r.info.status == "FINISHED")
        assert len(finished) == 2 and set(finished.values()) == {1}  # none lost, none twice
        assert "RUNNING" not in {r.info.status for r in every}
