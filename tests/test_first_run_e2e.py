"""A first `mtl-sweep run sweeps/smoke.yaml > log 2>&1`, as a new user on CI would see it:
short plain lines, a progress line that agrees with MLflow, and where to find the runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from mtl_core import contract as C
from mtl_sweep.store.ui_link import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, runs_view_url

from .e2e import SMOKE, Sandbox, runs

pytestmark = pytest.mark.e2e
MAX_LINE = 500  # characters: a log line longer than this is a progress bar's redraws


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """The most intervals that hold one instant (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_max_overlap_counts_touching_intervals_once() -> None:
    assert max_overlap([(0, 10), (5, 15), (10, 20)]) == 2
    assert max_overlap([(0, 1), (2, 3)]) == 1


def test_a_first_run_to_a_log_file(tmp_path) -> None:
    box = Sandbox(tmp_path)
    log = tmp_path / "log"
    with open(log, "w") as out:  # > log 2>&1: neither stream is a terminal
        proc = subprocess.run(
            [sys.executable, "-m", "mtl_sweep.commands.main", "run", SMOKE],
            cwd=box.root,
            env=box.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "\r" not in text
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE, text
    assert "synthetic faces: 304/304 img in" in text

    # The progress line against the MLflow runs' own start and end times.
    progress = [ln for ln in text.splitlines() if re.match(r"\[\d+:\d\d\] done ", ln)]
    shown = [int(re.search(r"running (\d+)", ln).group(1)) for ln in progress]
    peak = int(re.search(r"at most (\d+) running at once", progress[-1]).group(1))
    work = [r for r in runs(box.uri, "smoke") if r.data.tags[C.KIND] != C.KIND_SWEEP]
    overlap = max_overlap([(r.info.start_time, r.info.end_time) for r in work])
    if (os.cpu_count() or 1) >= 2:  # the pretraining job and a trial run together
        assert overlap >= 2
    assert peak == overlap
    assert max(shown) == overlap
    assert "done 5/5 | running 0 | pending 0 | failed 0" in progress[-1]

    # Where to look: the command for this store, then the runs view.
    from mlflow import MlflowClient

    exp = MlflowClient(box.uri).get_experiment_by_name("smoke")
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    ui = re.search(
        rf"MLflow UI: mlflow ui --backend-store-uri {re.escape(box.uri)} --port (\d+)\n", text
    )
    assert ui, text
    assert runs_view_url(f"http://127.0.0.1:{ui.group(1)}", exp.experiment_id) in text
    assert f"report: mtl-sweep report --tracking-uri {box.uri} -e smoke -s smoke" in text
    assert re.search(r"already done 0; \d+\.\d s since the command started", text), text
