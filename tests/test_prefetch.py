"""train.workers: batches gathered ahead on threads are the batches of workers 0, in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, trial_request
from mtl_sweep.spec.load import load_spec
from mtl_sweep.store.tracker import Tracker
from trainables.batches import Batch, MultiSourceBatches, eval_jobs
from trainables.prefetch import prefetch
from trainables.trainable import run_trial

from .conftest import SWEEPS
from .test_data_batches import rows, split


def _same(a: Batch, b: Batch) -> None:
    assert torch.equal(a.images, b.images)
    assert a.labels.keys() == b.labels.keys()
    for t in a.labels:
        torch.testing.assert_close(a.labels[t], b.labels[t], equal_nan=True)
        assert torch.equal(a.mask[t], b.mask[t])
    torch.testing.assert_close(a.age_std, b.age_std, equal_nan=True)


def _two_sources() -> MultiSourceBatches:
    big = split(300, "chalearn", age=np.arange(300))
    small = split(37, "fer2013", emotion=np.arange(37) % 7)
    return MultiSourceBatches([(big, ("age",)), (small, ("emotion",))], 16, "longest", seed=3)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_give_the_batch_sequence_of_workers_zero(workers: int) -> None:
    mb = _two_sources()
    for epoch in (0, 1):
        today = list(mb.epoch(epoch))  # the iterator trainables used before prefetch
        zero = list(prefetch(mb.epoch_jobs(epoch), 0))
        ahead = list(prefetch(mb.epoch_jobs(epoch), workers))
        assert len(today) == len(zero) == len(ahead) == len(mb)
        for a, b, c in zip(today, zero, ahead, strict=True):
            _same(a, b)
            _same(a, c)
    assert [rows(b).tolist() for b in prefetch(mb.epoch_jobs(0), workers)] != [
        rows(b).tolist() for b in prefetch(mb.epoch_jobs(1), workers)
    ]  # the comparison above could tell epochs apart


def test_eval_jobs_prefetched_keep_the_split_order() -> None:
    s = split(10, "chalearn", age=np.arange(10))
    batches = list(prefetch(eval_jobs(s, ("age",), 4), 3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert np.concatenate([rows(b) for b in batches]).tolist() == list(range(10))


def test_a_failing_job_raises_in_order_and_closing_early_stops_the_rest() -> None:
    ran: list[int] = []

    def job(i: int):
        def build() -> Batch:
            ran.append(i)
            if i == 3:
                raise OSError("cache read failed")
            return Batch(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), {}, {}, torch.zeros(1))

        return build

    it = prefetch([job(i) for i in range(100)], 2)
    for _ in range(3):
        next(it)
    with pytest.raises(OSError, match="cache read failed"):
        next(it)

    ran.clear()
    it = prefetch([job(i) for i in range(10, 100)], 2)
    next(it)
    it.close()  # what an exception in the training loop does to the generator
    assert len(ran) < 10  # the look-ahead ran, not the other 90 jobs
    with pytest.raises(ValueError, match="workers must be >= 0"):
        prefetch([], -1)


def _trial(tmp_path, *overrides: str):
    spec = load_spec(
        SWEEPS / "smoke.yaml",
        ["grid.pretrain=[none]", "grid.tasks=[all]", "train.epochs=1", *overrides],
    )
    (trial,) = expand(spec).trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    exp = tracker.experiment_id("prefetch", create=True)
    ctx = RunContext(spec, uri, exp, None, tmp_path / "cache")
    return trial, tracker, trial_request(trial, ctx)


def test_a_trial_with_workers_trains_exactly_like_workers_zero(tmp_path) -> None:
    key0, tracker, payload0 = _trial(tmp_path)
    key2, _, payload2 = _trial(tmp_path, "train.workers=2")
    assert key0.key == key2.key  # an execution setting, never in the key
    assert payload2.execution.workers == 2
    zero, two = run_trial(payload0), run_trial(payload2)
    assert zero.keys() == two.keys()
    for name, value in zero.items():
        if not name.startswith("time/"):
            assert two[name] == pytest.approx(value, rel=1e-6), name
    runs = tracker.client.search_runs([payload0.execution.experiment_id])
    assert sorted(r.data.params["run.workers"] for r in runs) == ["0", "2"]


def test_compile_is_applied_and_logged(tmp_path, monkeypatch) -> None:
    compiled: list[type] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(type(self)))
    _, tracker, payload = _trial(tmp_path, "train.compile=true")
    run_trial(payload)
    assert [c.__name__ for c in compiled] == ["MultiTaskNet"]
    (run,) = tracker.client.search_runs([payload.execution.experiment_id])
    assert run.data.params["run.compile"] == "True"
    assert run.data.tags["mtl_sweep.cuda_visible_devices"]  # "unset" outside Ray


@pytest.mark.gpu
def test_on_cuda_batches_come_pinned() -> None:
    mb = _two_sources()
    (first, *_) = prefetch(mb.epoch_jobs(0), 2, pin=True)
    assert first.images.is_pinned() and first.mask["age"].is_pinned()
