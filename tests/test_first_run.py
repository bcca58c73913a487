"""The first minutes of a new user: quiet progress off a terminal, the UI hint, and
synthetic faces rendered on every core with the same bytes as on one."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest

from mtl_data.progress_bar import PlainBar, progress_bar
from mtl_data.synthetic.pool import CHUNK, Stopped
from mtl_data.synthetic.write import write_synthetic
from mtl_sweep.spec.schema import SyntheticSource
from mtl_sweep.store.ui_link import EXPERIMENT_KIND_TAG, runs_view_url, ui_hint

# More than one chunk in some splits, and partial last chunks.
CHUNKED = SyntheticSource(train=CHUNK + 6, val=3, test=2, pretrain=CHUNK + 1, seed=11)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_worker_processes_write_the_same_bytes_and_labels_as_one_process(tmp_path: Path) -> None:
    one = write_synthetic(tmp_path / "one", CHUNKED, workers=1)
    two = write_synthetic(tmp_path / "two", CHUNKED, workers=2)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    assert one.records.keys() == two.records.keys()
    for fmt in one.records:
        assert [r.name for r in one.records[fmt]] == [r.name for r in two.records[fmt]]
        assert [r.drop for r in one.records[fmt]] == [r.drop for r in two.records[fmt]]


def test_a_stop_request_abandons_rendering(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        write_synthetic(tmp_path / "s", CHUNKED, workers=2, stop=stop)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_bar_is_a_few_plain_lines() -> None:
    out, clock = io.StringIO(), Clock()
    with PlainBar(3712, "synthetic faces", "img", out, every_s=5.0, clock=clock) as bar:
        for _ in range(3712):  # 20 s at about 186 img/s
            clock.now += 20 / 3712
            bar.update()
    lines = out.getvalue().splitlines()
    assert 3 <= len(lines) <= 5  # one every 5 s, and the closing line
    assert lines[0].startswith("synthetic faces: ")
    assert "\r" not in out.getvalue()
    assert lines[-1].startswith("synthetic faces: 3712/3712 img in 20.0 s")


def test_progress_bar_picks_plain_lines_for_a_stream_that_is_not_a_terminal() -> None:
    out = io.StringIO()
    assert isinstance(progress_bar(10, "x", stream=out), PlainBar)
    with progress_bar(10, "x", enabled=False, stream=out) as bar:
        bar.update(10)
    assert out.getvalue() == ""


def test_the_ui_hint_opens_the_runs_view() -> None:
    url = runs_view_url("http://127.0.0.1:5000/", "7")
    assert url == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    lines = ui_hint("sqlite:////tmp/a b/mlflow.db", "7")
    assert lines[0] == (
        "MLflow UI: mlflow ui --backend-store-uri 'sqlite:////tmp/a b/mlflow.db' --port 5000"
    )
    assert lines[1].endswith(url)
    assert ui_hint("http://mlflow:5000", "3") == [
        "MLflow UI: http://mlflow:5000/#/experiments/3/runs?workflowType=machine_learning"
    ]
    secret = ui_hint("postgresql://me:s3cret@db/mlflow", "1")[0]
    assert "s3cret" not in secret and "me:***@db" in secret


def test_a_new_experiment_is_tagged_as_model_training(tmp_path: Path) -> None:
    from mtl_sweep.store.tracker import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = tracker.experiment_id("sweep", create=True)
    tags = tracker.client.get_experiment(exp_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    other = tracker.client.create_experiment("older")  # made before the tag existed
    assert tracker.experiment_id("older", create=True) == other
    assert EXPERIMENT_KIND_TAG in tracker.client.get_experiment(other).tags
