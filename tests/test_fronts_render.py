"""The fronts section in every format: verdict tables, the `fronts` JSON list, CSV records
and the `--plot` panels, on the planted study of test_fronts.py."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from mtl_sweep.report import build_report
from mtl_sweep.report.cells import p_text
from mtl_sweep.report.render import render

from .test_fronts import planted
from .test_report import Study, ablation, empty_store, md_table, report_cli, uri  # noqa: F401

TITLE = "Age × Gender front (ResNet-18, no pretraining, age+gender trials)"


@pytest.fixture
def study(uri: str) -> str:  # noqa: F811  (test_report's fixture: an empty sqlite store)
    planted(Study(uri))
    return uri


def test_markdown_verdict_table(study):
    report = build_report(study)
    (front,) = report.fronts
    rows = md_table(render(report, "markdown"), TITLE)
    methods = [r["method"] for r in rows]
    assert methods == ["fixed"] * 4 + ["uncertainty", "dwa", "gradnorm"] + ["single-task"] * 2
    by_name = {r["method"]: r for r in rows[4:7]}
    assert by_name["uncertainty"]["verdict"] == "dominated"
    assert by_name["uncertainty"]["against"] == "1, 1"
    assert by_name["dwa"]["verdict"] == "**beyond**"
    assert by_name["gradnorm"]["verdict"] == "**front**" and by_name["gradnorm"]["against"] == ""
    test = {v.point.name: v for v in front.strategies}["uncertainty"].tests["gender"]
    assert by_name["uncertainty"]["p gender (Holm)"] == p_text(test.p_adjusted)
    assert by_name["uncertainty"]["Δ Gender Acc (%)"] == f"{100 * test.diff_mean:+.2f}"
    fixed = {r["weights"]: r["verdict"] for r in rows[:4]}
    assert fixed == {
        "1.8, 0.2": "**front**",
        "1.5, 0.5": "dominated",
        "1, 1": "**front**",
        "0.2, 1.8": "**front**",
    }


def test_json_fronts_list(study):
    data = json.loads(render(build_report(study), "json"))
    (entry,) = data["fronts"]
    assert entry["tasks"] == ["age", "gender"] and entry["set"] == ["age", "gender"]
    assert len(entry["points"]) == 4
    assert sorted(entry["front"]) == [[0.2, 1.8], [1.0, 1.0], [1.8, 0.2]]
    point = next(p for p in entry["points"] if p["weights"] == [1.0, 1.0])
    assert point["means"]["gender"] == pytest.approx(80, abs=1)  # percent
    assert point["ci"]["age"][0] < point["means"]["age"] < point["ci"]["age"][1]
    strategies = {s["name"]: s for s in entry["strategies"]}
    assert strategies["uncertainty"]["verdict"] == "dominated"
    assert strategies["uncertainty"]["dominated_by"] == [1.0, 1.0]
    assert strategies["dwa"]["verdict"] == "beyond" and strategies["dwa"]["dominated_by"] is None
    assert strategies["dwa"]["dominates"] == [1.0, 1.0]
    assert set(strategies["dwa"]["p_adjusted"]) == {"age", "gender"}
    assert strategies["gradnorm"]["p_adjusted"] == {}
    assert set(entry["hypervolume"]) == {"fixed", "uncertainty", "dwa", "gradnorm"}


def test_csv_has_a_record_per_point(study):
    frame = pd.read_csv(io.StringIO(render(build_report(study), "csv")))
    front = frame[frame["block"] == "front"]
    assert len(front) == 4 + 3 + 2
    verdicts = dict(zip(front["model"], front["verdict"], strict=True))
    assert verdicts["uncertainty"] == "dominated" and verdicts["dwa"] == "beyond"
    assert verdicts["fixed 1.5, 0.5"] == "dominated"
    assert front.loc[front["model"] == "uncertainty", "against"].item() == "1, 1"


@pytest.mark.parametrize("fmt", ["html", "latex", "github"])
def test_every_text_format_has_the_verdict_table(study, fmt):
    text = render(build_report(study), fmt)
    assert "beyond" in text and "dominated" in text
    assert ("Age $\\times$ Gender front" if fmt == "latex" else TITLE) in text


def test_a_sweep_without_multi_task_sets_has_no_fronts_section(uri):  # noqa: F811
    ablation(Study(uri), seeds=2)
    assert "fronts" not in json.loads(render(build_report(uri), "json"))


def test_plot_writes_a_fronts_figure(study, tmp_path, report_cli):  # noqa: F811
    png = tmp_path / "report.png"
    result = report_cli("--tracking-uri", study, "--plot", str(png))
    assert result.code == 0, result.err
    fronts = tmp_path / "report-fronts.png"
    assert fronts.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(fronts) in result.out + result.err
