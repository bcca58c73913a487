"""The report of a tuned sweep: its tuning table, edge warnings, budget flags (†), JSON and
CSV, and the winner read back from a real MLflow store (selection on validation)."""

from __future__ import annotations

import json
import math

import pandas as pd

from mtl_core import contract as C
from mtl_sweep.report.document import build_document
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.model.tuning import DAGGER
from mtl_sweep.report.tuning import build_tuning, edge_warnings
from mtl_sweep.report.writers.csv import write_csv
from mtl_sweep.search.select import finished_search_results, winner

SPACE = {
    "optimizer.lr": {"loguniform": [0.0003, 0.03]},
    "optimizer.weight_decay": {"uniform": [0, 1]},
}
SEARCH = {"space": SPACE, "samples": 2, "algorithm": "random", "scheduler": {"name": "asha"}}


def _rec(cell, tasks, index, lr, objective, steps, stopped=False):
    return {
        "cell": cell,
        "index": index,
        "values": {"optimizer.lr": lr, "optimizer.weight_decay": 0.5},
        "objective": objective,
        "steps": steps,
        "stopped": stopped,
        "run_id": f"{cell}{index}",
        "tasks": tasks,
        "backbone": "resnet18",
        "pretrain": "none",
        "weighting": "fixed",
        "start_time": index,
        "superseded": False,
    }


RECORDS = [
    _rec("M", ("age", "gender"), 0, 0.001, 0.40, 40),
    _rec("M", ("age", "gender"), 1, 0.029, 0.10, 10, stopped=True),
    _rec("A", ("age",), 0, 0.001, 0.50, 40),
    _rec("A", ("age",), 1, 0.029, 0.30, 40),
    _rec("G", ("gender",), 0, 0.001, 0.20, 40),
    _rec("G", ("gender",), 1, 0.029, 0.60, 40),
]
FINALS = pd.DataFrame(
    {
        "status": ["FINISHED"] * 3,
        "superseded": [False] * 3,
        "cell": ["M", "A", "G"],
        "tuned_from": ["M0", "A0", "G1"],
    }
)


def test_the_tuning_table_names_each_cells_winner_and_flags_unequal_budgets():
    tuning = build_tuning(RECORDS, SEARCH, FINALS)
    cells = {c.cell: c for c in tuning.cells}
    assert cells["M"].chosen.run_id == "M0" and cells["M"].steps == 50
    assert cells["G"].chosen.values["optimizer.lr"] == 0.029
    # G's winner sits at the top of the lr range in log space: warned; A's does not
    assert (
        cells["G"].edges and "top 10%" in cells["G"].edges[0] and "log scale" in cells["G"].edges[0]
    )
    assert not cells["A"].edges
    ((mtl, _, ratio),) = tuning.comparisons
    assert mtl == "ResNet-18-Age_Gender" and ratio == 80 / 50
    assert cells["M"].flagged and cells["A"].flagged


def test_budgets_within_the_tolerance_are_not_flagged():
    even = [dict(r, steps=40) for r in RECORDS]
    tuning = build_tuning(even, SEARCH, FINALS)
    assert tuning.comparisons[0][2] == 1.0
    assert not any(c.flagged for c in tuning.cells)


def test_edges_are_judged_in_log_space_for_loguniform_only():
    lr = {"optimizer.lr": {"loguniform": [0.001, 1.0]}}
    assert edge_warnings({"optimizer.lr": 0.0015}, lr)  # 6% of the way in log space
    assert not edge_warnings({"optimizer.lr": 0.05}, lr)  # 57%: fine, though near 0 linearly
    lin = {"optimizer.lr": {"uniform": [0.0, 1.0]}}
    assert edge_warnings({"optimizer.lr": 0.95}, lin) and not edge_warnings(
        {"optimizer.lr": 0.5}, lin
    )
    assert not edge_warnings({"x": "a"}, {"x": {"choice": ["a", "b"]}})


def test_the_document_carries_the_tuning_in_every_format(tmp_path):
    counts = dict.fromkeys(
        ("trials_finished", "trials_failed", "trials_unfinished", "trials_missing"), 0
    )
    counts.update(pretrain_finished=0, pretrain_failed=0)
    report = Report("sqlite:///x.db", "e", "s", ("backbone",), [], counts)
    report.tuning = build_tuning(RECORDS, SEARCH, FINALS)
    doc = build_document(report)
    (section,) = [s for s in doc.sections if s.key == "tuning"]
    (table,) = section.blocks[0]
    assert table.title == "Tuning"
    assert any(DAGGER in n for n in table.notes)
    data = json.loads(json.dumps(section.data))  # JSON-ready
    assert {c["cell"] for c in data["cells"]} == {"M", "A", "G"}
    assert data["comparisons"][0]["flagged"] is True
    assert len(section.records) == 3 and "search steps" in section.records[0]
    (sensitivity,) = [f for f in doc.figures if f.suffix == "-sensitivity"]
    assert any(p.key == "optimizer.lr" for p in sensitivity.panels)
    csv = write_csv(doc)
    assert "search steps" in csv and "chosen optimizer.lr" in csv


def test_the_winner_follows_validation_where_test_disagrees(tmp_path):
    """Read back from a real store: the sample best on test but not on validation loses."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    for index, (val, test) in enumerate([(0.6, 0.2), (0.3, 0.9)]):
        tags = {
            C.KIND: C.KIND_SEARCH,
            C.KEY: f"k{index}",
            C.CELL: "A",
            C.SAMPLE: str(index),
            C.SEARCH_VALUES: json.dumps({"optimizer.lr": 0.01 * (index + 1)}),
        }
        run = client.create_run(exp, tags=tags).info.run_id
        client.log_metric(run, C.SEARCH_BEST, val)
        client.log_metric(run, "test/gender_acc", test)
        client.log_metric(run, C.SEARCH_STEPS, 40)
        client.set_terminated(run, "FINISHED")
    results = finished_search_results(client, exp)
    best = winner(results.values())
    assert best.key == "k0" and best.values == {"optimizer.lr": 0.01}
    assert not math.isnan(best.objective)
