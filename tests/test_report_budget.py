"""The report states each table's budget and flags multi-task rows that had another one."""

from __future__ import annotations

from pathlib import Path

from mtl_sweep.report import render_report

from .test_report import Study

SINGLE = {"age": 9.0, "gender": 0.80}


def _study(tmp_path: Path, mtl_steps: float, mtl_age_images: float) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study = Study(uri)
    for task, value in SINGLE.items():
        study.trial(
            (task,),
            {task: value, "budget/steps": 120.0, f"budget/{task}_images": 3840.0},
        )
    study.trial(
        ("age", "gender"),
        {
            "age": 8.5,
            "gender": 0.82,
            "budget/steps": mtl_steps,
            "budget/age_images": mtl_age_images,
            "budget/gender_images": 3840.0,
        },
    )
    return uri


def test_matched_budgets_are_stated_and_not_flagged(tmp_path):
    text = render_report(_study(tmp_path, 120.0, 3840.0), fmt="markdown")
    assert "Budget: 120 optimizer steps per trial, images per task age 3,840, gender 3,840" in text
    assert "†" not in text


def test_a_multi_task_row_with_another_budget_is_flagged(tmp_path):
    # As under the per_epoch rule: more steps, and more age images, than the single-task rows.
    text = render_report(_study(tmp_path, 384.0, 4608.0), fmt="markdown")
    assert "ResNet-18-Age_Gender †" in text
    assert "steps 384 vs 120; age_images 4,608 vs 3,840" in text
    # Within 1% is the same budget (rounding of a last partial step).
    assert "†" not in render_report(_study(tmp_path / "b", 121.0, 3860.0), fmt="markdown")
