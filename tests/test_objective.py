"""The trivial predictor, the search objective's formula, and what a trial logs of them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from mtl_core import contract as C
from mtl_data.cache import CachedSplit
from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec
from trainables.objective import relative_objective, trivial_metrics, val_loss_objective
from trainables.trainable import run_trial

from .conftest import SWEEPS
from .test_trainable import TINY, _context


def _split(**labels):
    n = len(next(iter(labels.values())))
    full = {t: np.full(n, np.nan, np.float32) for t in ("age", "gender", "emotion", "smile")}
    full.update({t: np.asarray(v, np.float32) for t, v in labels.items()})
    return CachedSplit(np.zeros((n, 2, 2, 3), np.uint8), full, None, {"usable": n})


def test_the_trivial_predictor_is_the_mean_train_age_and_the_majority_train_class():
    train = [(_split(age=[10, 20, 30], gender=[1, 1, 0]), ("age", "gender"))]
    val = [(_split(age=[20, 40], gender=[1, 0]), ("age", "gender"))]
    test = [(_split(age=[25, 25, np.nan], gender=[0, 0, 1]), ("age", "gender"))]
    out = trivial_metrics(train, val, test, ("age", "gender"))
    assert out == {
        "trivial/val/age_mae": 10.0,  # mean train age 20: |20-20|, |40-20|
        "trivial/test/age_mae": 5.0,  # unlabelled images are left out
        "trivial/val/gender_acc": 0.5,  # majority class 1
        "trivial/test/gender_acc": pytest.approx(1 / 3),
    }


def test_the_relative_objective_pins_its_formula():
    trivial = {"trivial/val/age_mae": 10.0, "trivial/val/gender_acc": 0.6}
    val = {"age_mae": 8.0, "gender_acc": 0.8}
    assert relative_objective(val, trivial, ("age",)) == pytest.approx(0.2)  # 1 - 8/10
    assert relative_objective(val, trivial, ("gender",)) == pytest.approx(0.5)  # .2/.4
    assert relative_objective(val, trivial, ("age", "gender")) == pytest.approx(0.35)
    assert relative_objective({"age_mae": 10.0}, trivial, ("age",)) == 0.0  # trivial = 0
    assert math.isnan(relative_objective({}, trivial, ("age",)))
    assert val_loss_objective({"age_loss": 2.0, "gender_loss": 1.0}, ("age", "gender")) == -1.5


@pytest.mark.parametrize("objective", [None, "relative", "val_loss"])
def test_a_trial_logs_its_trivial_predictor_and_the_objective_per_round(tmp_path, objective):
    spec = load_spec(SWEEPS / "smoke.yaml", [*TINY, "grid.tasks=[[age, gender]]"])
    (trial,) = expand(spec).trials
    tracker, ctx = _context(tmp_path, spec)
    from mtl_sweep.run.requests import trial_request

    request = trial_request(trial, ctx)
    request = replace(request, execution=replace(request.execution, objective=objective))
    reports = []
    run_trial(request, reporter=reports.append)
    (run,) = tracker.client.search_runs([ctx.experiment_id])
    metrics = run.data.metrics
    for split in ("val", "test"):
        assert f"trivial/{split}/age_mae" in metrics and f"trivial/{split}/gender_acc" in metrics
    history = tracker.client.get_metric_history(run.info.run_id, C.SEARCH_OBJECTIVE)
    if objective is None:
        assert not history and C.SEARCH_BEST not in metrics
        return
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]  # every round
    assert metrics[C.SEARCH_STEPS] == 6  # steps so far, at the last round
    assert metrics[C.SEARCH_BEST] == max(m.value for m in history)
    if objective == "relative":
        last = max(history, key=lambda m: m.step)
        expected = relative_objective(
            {
                "age_mae": tracker.client.get_metric_history(run.info.run_id, "val/age_mae")[
                    -1
                ].value,
                "gender_acc": metrics["val/gender_acc"],
            },
            metrics,
            ("age", "gender"),
        )
        assert last.value == pytest.approx(expected)
    assert [r["rounds_done"] for r in reports] == [1, 2, 3, 4, 5, 6, 6]
    assert reports[-1]["final"] and reports[-1][C.SEARCH_OBJECTIVE] == metrics[C.SEARCH_BEST]
    assert all(r["run_id"] == run.info.run_id for r in reports)
