"""Golden output: every report format, byte for byte, on fixed studies.

The studies are the report tests' own (tests/test_report.py, test_report_stats.py,
test_groupings.py, test_report_budget.py), logged through the run contract into a fresh
sqlite store. Restructuring the report package must not change a byte of what it writes;
a deliberate change to the output regenerates the files with
`MTL_SWEEP_UPDATE_GOLDEN=1 pytest tests/test_report_golden.py` and shows up in the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mtl_core import contract as C
from mtl_sweep.report import build_report
from mtl_sweep.report.render import render

from . import test_groupings as groupings_study
from . import test_report_stats as stats_study
from .test_report import Study, ablation, empty_store, uri  # noqa: F401

GOLDEN = Path(__file__).parent / "golden"
FORMATS = ("markdown", "github", "latex", "csv", "html", "json")
URI_MARK = "sqlite:///STORE"  # the store's path differs per run; the files hold this instead


def _rich(study: Study) -> None:
    """Paired statistics over six seeds with failures and gaps, adaptive weightings, rows
    told apart by a setting, budgets, pretraining, a pretraining job and reference models."""
    stats_study.log_study(study, 6, skip={"gender": {5}})
    three = stats_study.THREE
    study.trial(three, {"age": 5.0, "gender": 0.9, "emotion": 0.5}, seed=6, status="FAILED")
    study.trial(
        three,
        {"age": 5.2, "gender": 0.91, "emotion": 0.56},
        seed=0,
        weighting="uncertainty",
    )
    study.trial(
        three,
        {"age": 5.1, "gender": 0.90, "emotion": 0.57},
        seed=0,
        train={"lr": 0.01},
    )
    for task, value in {"age": 9.0, "gender": 0.80}.items():
        study.trial(
            (task,),
            {task: value, "budget/steps": 120.0, f"budget/{task}_images": 3840.0},
            pretrain="imdb_wiki",
        )
    study.trial(
        ("age", "gender"),
        {"age": 8.5, "gender": 0.82, "budget/steps": 384.0, "budget/age_images": 4608.0},
        pretrain="imdb_wiki",
    )
    study.trial(("age", "gender"), {"age": 8.0, "gender": 0.7}, pretrain="imdb_wiki",
                kind=C.KIND_PRETRAIN, seed=0)  # fmt: skip
    study.trial("age", {"age": 4.0}, backbone="dex", label="DEX", pretrain="imdb_wiki")
    study.trial("age", {"age": 6.5}, backbone="ssrnet", label="SSR-Net")


def _ablation(study: Study) -> None:
    ablation(study, seeds=3)


def _one_seed(study: Study) -> None:
    ablation(study, seeds=1)


STUDIES: dict[str, Callable[[Study], None]] = {
    "rich": _rich,
    "ablation": _ablation,
    "one_seed": _one_seed,
    "groupings": groupings_study.log_study,
    "empty": lambda study: None,
}


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_format_is_byte_identical_to_its_golden_file(uri, name):  # noqa: F811
    STUDIES[name](Study(uri))
    report = build_report(uri)
    update = os.environ.get("MTL_SWEEP_UPDATE_GOLDEN") == "1"
    for fmt in FORMATS:
        text = render(report, fmt).replace(uri, URI_MARK)
        path = GOLDEN / f"{name}.{fmt}"
        if update:
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden file {path.name}: run with MTL_SWEEP_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{name}.{fmt} differs from golden"
