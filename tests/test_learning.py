"""Learning is real: on the default synthetic data, a short run beats trivial predictors.

Slow (about a minute on 2 cores): `pytest -m slow`.
"""

from __future__ import annotations

import numpy as np
import pytest

from mtl_data.cache import load_split
from mtl_data.source import resolve_source
from mtl_sweep.expand import expand
from mtl_sweep.run.requests import RunContext, trial_request
from mtl_sweep.spec.load import load_spec
from mtl_sweep.store.tracker import Tracker
from trainables.trainable import run_trial

from .conftest import SWEEPS

pytestmark = pytest.mark.slow


def trivial_baselines(cache_dir, config) -> dict[str, float]:
    """Test-split scores of predicting the train mean age / the train majority class."""
    out = {}
    size = config.train.image_size
    for task, source in config.sources.items():
        src = resolve_source(source, task, cache_dir, progress=False)
        train = load_split(src, "train", size, cache_dir, progress=False).labels[task]
        test = load_split(src, "test", size, cache_dir, progress=False).labels[task]
        train, test = train[np.isfinite(train)], test[np.isfinite(test)]
        if task == "age":
            out["age_mae"] = float(np.mean(np.abs(test - train.mean())))
        else:
            values, counts = np.unique(train, return_counts=True)
            out[f"{task}_acc"] = float(np.mean(test == values[np.argmax(counts)]))
    return out


def test_a_short_four_task_run_beats_trivial_predictors(tmp_path):
    # The one-seed ablation's training, as when the margins below were first measured.
    overrides = ["grid.pretrain=[none]", "grid.tasks=[all]", "grid.seed=[0]"]
    overrides += ["train.epochs=6", "train.image_size=32"]
    spec = load_spec(SWEEPS / "ablation.yaml", overrides)
    (trial,) = expand(spec).trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ctx = RunContext(
        spec, uri, Tracker(uri).experiment_id("learn", create=True), None, tmp_path / "cache"
    )
    result = run_trial(trial_request(trial, ctx))
    trivial = trivial_baselines(tmp_path / "cache", trial.config)
    print({"trained": result, "trivial": trivial})
    assert result["test/age_mae"] <= 0.6 * trivial["age_mae"]
    for task in ("gender", "emotion", "smile"):
        assert result[f"test/{task}_acc"] >= trivial[f"{task}_acc"] + 0.20, task
