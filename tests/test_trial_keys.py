"""Trial keys of the shipped specs are pinned: a change here reruns users' finished trials.

`tests/trial_keys.json` was written before the typed `TrialConfig` replaced the payload
dict; the keys must not move unless the README says so and `run` says what it reruns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .conftest import SWEEPS

PINNED = json.loads((Path(__file__).parent / "trial_keys.json").read_text())
ROOTS = ("CHALEARN_ROOT", "CELEBA_ROOT", "FER2013_ROOT", "IMDB_WIKI_ROOT")


@pytest.mark.parametrize("spec_file", sorted(PINNED))
def test_shipped_spec_keys_are_pinned(spec_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ROOTS:  # the keys were pinned with these roots (absolute roots enter keys)
        monkeypatch.setenv(var, f"/data/{var.lower()}")
    plan = expand(load_spec(SWEEPS / spec_file), spec_file)
    trials = {t.name + (f"|{t.label}" if t.label else ""): t.key for t in plan.trials}
    jobs = {f"{j.stage}/{j.backbone}": j.key for j in plan.jobs}
    assert trials == PINNED[spec_file]["trials"]
    assert jobs == PINNED[spec_file]["jobs"]
