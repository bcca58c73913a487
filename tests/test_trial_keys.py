"""Trial keys of the shipped specs are pinned: a change here reruns users' finished trials.

- `trial_keys_per_epoch.json` holds the keys from before matched budgets and the typed
  `TrialConfig`: a spec that names the old rule (`train.budget.rule: per_epoch`) must keep
  them, so its finished runs are not run again.
- `trial_keys.json` pins today's keys (the matched default), so no refactor moves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .conftest import SWEEPS

HERE = Path(__file__).parent
ROOTS = ("CHALEARN_ROOT", "CELEBA_ROOT", "FER2013_ROOT", "IMDB_WIKI_ROOT")


def keys_of(spec_file: str, *overrides: str) -> dict[str, dict[str, str]]:
    """Run name (plus reference label) -> key, for trials and pretraining jobs."""
    plan = expand(load_spec(SWEEPS / spec_file, list(overrides)), spec_file)
    return {
        "trials": {
            t.name + (f"|{t.config.label}" if t.config.label else ""): t.key for t in plan.trials
        },
        "jobs": {f"{j.config.stage}/{j.config.backbone}": j.key for j in plan.jobs},
    }


@pytest.fixture(autouse=True)
def _roots(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ROOTS:  # the keys were pinned with these roots (absolute roots enter keys)
        monkeypatch.setenv(var, f"/data/{var.lower()}")


# The shipped specs as they were when the old keys were pinned (ablation.yaml has since
# moved to three seeds at a smaller size, smoke.yaml to a smaller trunk).
AS_THEN = {
    "ablation.yaml": [
        "grid.seed=[0]",
        "train.epochs=6",
        "train.image_size=32",
        "train.eval_every=null",
    ],
    "paper.yaml": [],
    "smoke.yaml": ["grid.backbone=resnet18"],
}


@pytest.mark.parametrize("spec_file", sorted(AS_THEN))
def test_the_old_rule_keeps_the_keys_of_runs_made_before_budgets(spec_file: str) -> None:
    pinned = json.loads((HERE / "trial_keys_per_epoch.json").read_text())[spec_file]
    as_then = keys_of(spec_file, "train.budget={rule: per_epoch}", *AS_THEN[spec_file])
    assert as_then == pinned


@pytest.mark.parametrize("spec_file", sorted(p.name for p in SWEEPS.glob("*.yaml")))
def test_shipped_spec_keys_are_pinned(spec_file: str) -> None:
    pinned = json.loads((HERE / "trial_keys.json").read_text())
    assert spec_file in pinned, "new spec: add its keys with `python -m tests.test_trial_keys`"
    assert keys_of(spec_file) == pinned[spec_file]


if __name__ == "__main__":  # rewrite trial_keys.json (only when a key change is intended)
    import os

    for var in ROOTS:
        os.environ[var] = f"/data/{var.lower()}"
    out = {p.name: keys_of(p.name) for p in sorted(SWEEPS.glob("*.yaml"))}
    (HERE / "trial_keys.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
