"""Every shipped spec loads, validates and expands; the paper spec has the agreed shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mtl_sweep.expand import expand
from mtl_sweep.spec.load import load_spec

from .conftest import SWEEPS

SPECS = sorted(SWEEPS.glob("*.yaml"))


def test_the_three_specs_ship():
    assert {p.name for p in SPECS} >= {"ablation.yaml", "paper.yaml", "smoke.yaml"}


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_spec_loads_validates_and_expands(path, paper_env):
    plan = expand(load_spec(path), str(path))
    assert plan.trials
    assert len({t.key for t in plan.trials}) == len(plan.trials)
    for t in plan.trials:
        assert t.pretrain == "none" or t.pretrain_key in {j.key for j in plan.jobs}


def test_paper_has_108_main_trials_plus_reference_models(cli, paper_env):
    result = cli("plan", str(SWEEPS / "paper.yaml"), "--offline", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    counts = data["counts"]
    assert counts["main"] == 3 * 2 * 3 * (4 + 2) == 108
    assert counts["reference"] == 6  # DEX and SSR-Net, three seeds each
    labels = {t["label"] for t in data["trials"] if t["label"]}
    assert labels == {"DEX-style", "SSR-Net"}
    dex = [t for t in data["trials"] if t["label"] == "DEX-style"]
    assert all(t["backbone"] == "dex" and t["pretrain"] == "imdb_wiki" for t in dex)
    assert all(t["config"]["train"]["imagenet_weights"] for t in dex)  # ImageNet, IMDB-WIKI, target
    assert counts["pretrain_jobs"] == 4  # imdb_wiki x (resnet18, resnet50, alexnet, dex)


def test_paper_plan_table_states_the_counts(cli, paper_env):
    result = cli("plan", str(SWEEPS / "paper.yaml"), "--offline")
    assert result.code == 0
    last = result.out.strip().splitlines()[-1]
    assert last.startswith("108 trials in the main grid")
    assert "72 single-task trials ignore weight vectors" in last
    assert "6 reference-model trials" in last


def test_ablation_is_synthetic_singles_plus_all_with_and_without_pretraining():
    plan = expand(load_spec(SWEEPS / "ablation.yaml"))
    assert {t.config.sources[t.config.tasks[0]].kind for t in plan.trials} == {"synthetic"}
    assert sorted(len(t.config.tasks) for t in plan.trials) == [1] * 24 + [4] * 6  # three seeds
    assert {t.pretrain for t in plan.trials} == {"none", "imdb_wiki"}
    assert {t.config.backbone for t in plan.trials} == {"resnet18"}


def test_spec_module_imports_neither_torch_nor_ray():
    code = (
        "import sys, mtl_core.trial, mtl_sweep.spec, mtl_sweep.expand, mtl_sweep.commands.plan,"
        " mtl_sweep.commands.main, mtl_sweep.run.requests\n"
        "bad = [m for m in ('torch', 'ray', 'torchvision', 'mlflow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
