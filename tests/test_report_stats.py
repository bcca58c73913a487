"""Paired seed statistics in `mtl-sweep report`, checked against the test's own scipy.

Known per-seed values are logged through the MLflow run contract into a throwaway sqlite
store (tests/test_report.py's `Study`); the report's means, intervals, p-values, Holm
adjustment and markers are then recomputed here from the same values.
"""

from __future__ import annotations

import io
import json
import math
import random
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from mtl_core import contract as C
from mtl_sweep.report import render_report
from mtl_sweep.report.stats import holm, min_detectable_difference, paired
from tests.test_report import Study, by_model, md_table

THREE = ("age", "gender", "emotion")
MTL = "ResNet-18-Age_Gender_Emotion"
TITLE = "ResNet-18, no pretraining"
KEY = {"age": "test/age_mae", "gender": "test/gender_acc", "emotion": "test/emotion_acc"}
SIGN = {"age": -1, "gender": 1, "emotion": 1}  # + means multi-task is better
SCALE = {"age": 1.0, "gender": 100.0, "emotion": 100.0}  # stored -> display units
COLUMN = {
    "age": "Age MAE (ChaLearn 2016)",
    "gender": "Gender Acc (%) (CelebA)",
    "emotion": "Emotion Acc (%) (FER2013)",
}
FIELDS = (
    "n",
    "mtl_mean",
    "stl_mean",
    "diff_mean",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow sqlite store, made once (migrations take ~1.5 s)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def uri(tmp_path: Path, migrated: Path) -> str:
    """This test's own store: a copy of the empty one."""
    shutil.copy(migrated, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def report_cli(cli):
    """`mtl-sweep report ARGS` in-process (the conftest `cli` runner)."""
    return lambda *args: cli("report", *args)


# --- the test's own statistics ------------------------------------------------------------


def own_holm(p: list[float]) -> list[float]:
    """Holm–Bonferroni written from its definition, with a plain loop."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def own_paired(mtl: dict[int, float], stl: dict[int, float], task: str) -> dict:
    """Means, signed gain, 95% t interval and paired t p-value over the shared seeds."""
    seeds = sorted(set(mtl) & set(stl))
    m = [mtl[s] * SCALE[task] for s in seeds]
    b = [stl[s] * SCALE[task] for s in seeds]
    gains = [SIGN[task] * (x - y) for x, y in zip(m, b, strict=True)]
    out = {"seeds": seeds, "n": len(seeds), "mtl_mean": statistics.mean(m)}
    out |= {"stl_mean": statistics.mean(b), "diff_mean": statistics.mean(gains)}
    if len(seeds) > 1:
        half = stats.t.ppf(0.975, len(seeds) - 1) * statistics.stdev(gains) / len(seeds) ** 0.5
        out |= {"ci_low": out["diff_mean"] - half, "ci_high": out["diff_mean"] + half}
        # ttest_rel on the values in "higher is better" orientation is the paired t-test.
        higher_m, higher_b = [SIGN[task] * x for x in m], [SIGN[task] * x for x in b]
        out["p_value"] = stats.ttest_rel(higher_m, higher_b).pvalue
    if len(seeds) >= 6:
        out["p_wilcoxon"] = stats.wilcoxon(gains).pvalue
    return out


def own_delta_m(mtl: dict[str, float], stl: dict[str, float]) -> float:
    """Δm = 100/T Σ s_t (M_t − S_t) / S_t."""
    return 100 / len(mtl) * sum(SIGN[t] * (mtl[t] - stl[t]) / stl[t] for t in mtl)


# --- logging a study with known per-seed values --------------------------------------------


def log_study(study: Study, n: int, *, skip: dict[str, set[int]] | None = None) -> dict:
    """Three single-task rows and the three-task row over seeds 0..n-1; returns the values.

    The multi-task row is better on age (MAE 1 year lower) and gender (+3 points) and worse
    on emotion (-3 points), each with seed noise. `skip` leaves seeds out of a row ("mtl"
    or a task): they never ran.
    """
    rng = random.Random(n)
    skip = skip or {}
    values: dict[str, dict[str, dict[int, float]]] = {"mtl": {t: {} for t in THREE}}
    base = {"age": 6.0, "gender": 0.88, "emotion": 0.55}
    shift = {"age": -1.0, "gender": 0.03, "emotion": -0.03}
    noise = {"age": 0.4, "gender": 0.012, "emotion": 0.012}
    for seed in range(n):
        mtl = {}
        for task in THREE:
            stl = base[task] + rng.gauss(0, noise[task])
            mtl[task] = stl + shift[task] + rng.gauss(0, noise[task])
            values.setdefault(task, {task: {}})
            if seed not in skip.get(task, set()):
                study.trial((task,), {task: stl}, seed=seed)
                values[task][task][seed] = stl
        if seed not in skip.get("mtl", set()):
            study.trial(THREE, mtl, seed=seed)
            for task in THREE:
                values["mtl"][task][seed] = mtl[task]
    return values


def mtl_row(doc: dict, title: str = TITLE) -> dict:
    (table,) = [t for t in doc["tables"] if t["title"] == title]
    (row,) = [r for r in table["rows"] if r["block"] == "multi-task"]
    return row


def check_against_own(row: dict, values: dict, holm_p: dict[str, float] | None = None) -> None:
    """The report's paired fields for each task equal the test's own computation."""
    for task in THREE:
        got, want = row["paired"][task], own_paired(values["mtl"][task], values[task][task], task)
        assert got["n"] == want["n"] and got["seeds"] == want["seeds"]
        for field in ("mtl_mean", "stl_mean", "diff_mean", "ci_low", "ci_high", "p_value"):
            if field in want:
                assert got[field] == pytest.approx(want[field], rel=1e-6, abs=1e-9), field
            else:
                assert got[field] is None, field
        if "p_wilcoxon" in want:
            assert got["p_wilcoxon"] == pytest.approx(want["p_wilcoxon"], rel=1e-6)
        else:
            assert got["p_wilcoxon"] is None
        if holm_p is not None:
            assert got["p_adjusted"] == pytest.approx(holm_p[task], rel=1e-6)
            assert got["significant"] is bool(holm_p[task] < 0.05)


def paired_table(text: str) -> list[dict[str, str]]:
    """The markdown table of paired differences under TITLE's table."""
    heading = f"### Paired differences, multi-task − single-task ({TITLE})"
    return md_table(text.replace(heading, "## paired"), "paired")


def markers(text: str) -> dict[str, str]:
    """Task -> the marker ending the multi-task cell of the main markdown table."""
    cells = by_model(md_table(text, TITLE))[MTL]
    return {t: cells[COLUMN[t]].rsplit(" ", 1)[-1] for t in THREE}


# --- the numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10])
def test_paired_statistics_match_scipy(uri, n):
    values = log_study(Study(uri), n)
    doc = json.loads(render_report(uri, fmt="json"))
    row = mtl_row(doc)
    own = {t: own_paired(values["mtl"][t], values[t][t], t) for t in THREE}
    adjusted = dict(zip(THREE, own_holm([own[t]["p_value"] for t in THREE]), strict=True))
    check_against_own(row, values, adjusted)
    assert doc["tests"] == 3 and doc["holm_family"] == "report" and doc["alpha"] == 0.05

    # Δm seed by seed, then mean and 95% t interval.
    per_seed = [
        own_delta_m({t: values["mtl"][t][s] for t in THREE}, {t: values[t][t][s] for t in THREE})
        for s in range(n)
    ]
    dm = row["delta_m"]
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(per_seed) / n**0.5
    assert dm["n"] == n
    assert dm["mean"] == pytest.approx(statistics.mean(per_seed), rel=1e-6)
    assert dm["ci_low"] == pytest.approx(statistics.mean(per_seed) - half, rel=1e-6)
    assert dm["ci_high"] == pytest.approx(statistics.mean(per_seed) + half, rel=1e-6)

    # Markers: ▲ where significantly better, ▼ where significantly worse, else none.
    text = render_report(uri)
    want = {
        t: ("▲" if own[t]["diff_mean"] > 0 else "▼") if adjusted[t] < 0.05 else "" for t in THREE
    }
    got = {t: m if m in ("▲", "▼") else "" for t, m in markers(text).items()}
    assert got == want
    if n == 10:  # the effects are large against the noise: both directions are marked
        assert want == {"age": "▲", "gender": "▲", "emotion": "▼"}
        assert "p (Wilcoxon)" in text
    gender = {r["task"]: r for r in paired_table(text)}["Gender Acc (%)"]
    assert gender["n"] == str(n)
    assert gender["gain"].split()[0] == f"{own['gender']['diff_mean']:+.2f}"
    low, high = own["gender"]["ci_low"], own["gender"]["ci_high"]
    assert gender["95% CI"] == f"[{low:+.2f}, {high:+.2f}]"  # shown from n = 2, however wide


def test_a_three_seed_report_reads_well(uri):
    log_study(Study(uri), 3)
    text = render_report(uri)
    assert "n = 3 seeds." in text
    assert text.count("▲/▼: significantly better/worse, p (Holm) < 0.05") == 1
    assert "Holm–Bonferroni over all 3 tests of this report" in text
    assert "Smallest gain detectable with 80% power at n = 3" in text
    cell = by_model(md_table(text, TITLE))[MTL]["Δm (%)"]
    assert cell.count("[") == 1 and cell.endswith("]")  # +x.xx [lo, hi]
    assert "(n=" not in text


def test_one_seed_says_no_test(uri):
    values = log_study(Study(uri), 1)
    doc = json.loads(render_report(uri, fmt="json"))
    row = mtl_row(doc)
    check_against_own(row, values)
    for task in THREE:
        test = row["paired"][task]
        assert test["n"] == 1 and test["no_test"] == "n = 1"
        assert test["p_value"] is test["p_adjusted"] is test["ci_low"] is None
        assert test["significant"] is False
    assert doc["tests"] == 0
    assert row["delta_m"]["ci_low"] is None
    text = render_report(uri)
    assert "n = 1: no test" in text
    assert "▲" not in text and "▼" not in text
    rows = paired_table(text)
    assert {r["p"] for r in rows} == {"no test (n = 1)"}
    assert {r["95% CI"] for r in rows} == {"—"}


def test_a_seed_missing_on_one_side_drops_the_pair(uri):
    # The multi-task row never ran seed 2; gender's single-task row never ran seed 4.
    values = log_study(Study(uri), 5, skip={"mtl": {2}, "gender": {4}})
    row = mtl_row(json.loads(render_report(uri, fmt="json")))
    assert row["paired"]["age"]["seeds"] == [0, 1, 3, 4]
    assert row["paired"]["gender"]["seeds"] == [0, 1, 3]
    assert row["paired"]["gender"]["n"] == 3
    assert row["delta_m"]["n"] == 3  # the seeds shared with every single-task row
    check_against_own(row, values)
    text = render_report(uri)
    assert f"- {MTL} (1, 1, 1): seed 2 missing (no run)." in text
    assert "- ResNet-18-Gender: seed 4 missing (no run)." in text


def test_a_failed_run_is_left_out_of_the_pairs(uri):
    study = Study(uri)
    values = log_study(study, 4)
    # Emotion's single-task seed 1 failed (its metric may even have been logged).
    for run in study.client.search_runs([study.exp_id], f"tags.`{C.TASKS}` = 'emotion'"):
        if run.data.tags[C.SEED] == "1":
            study.client.set_terminated(run.info.run_id, "FAILED")
    del values["emotion"]["emotion"][1]
    row = mtl_row(json.loads(render_report(uri, fmt="json")))
    assert row["paired"]["emotion"]["seeds"] == [0, 2, 3]
    assert row["paired"]["age"]["n"] == 4
    check_against_own(row, values)
    assert "- ResNet-18-Emotion: seed 1 failed." in render_report(uri)


def test_holm_runs_over_the_whole_report_whatever_the_grouping(uri):
    study = Study(uri)
    rng = random.Random(7)
    for pretrain in ("none", "imdb_wiki"):
        for seed in range(4):
            study.trial(("age",), {"age": 6 + rng.gauss(0, 0.3)}, seed=seed, pretrain=pretrain)
            study.trial(("gender",), {"gender": 0.9 + rng.gauss(0, 0.01)}, seed=seed,
                        pretrain=pretrain)  # fmt: skip
            mtl = {"age": 5.5 + rng.gauss(0, 0.3), "gender": 0.91 + rng.gauss(0, 0.01)}
            study.trial(("age", "gender"), mtl, seed=seed, pretrain=pretrain)
    split = json.loads(render_report(uri, fmt="json"))
    whole = json.loads(render_report(uri, fmt="json", group_by=["none"]))
    assert len(split["tables"]) == 2 and len(whole["tables"]) == 1
    cells = [
        (r["pretrain"], t, r["paired"][t])
        for table in split["tables"]
        for r in table["rows"]
        if r["block"] == "multi-task"
        for t in ("age", "gender")
    ]
    # One family: the four paired tests and the three pretraining-interaction tests (Δm,
    # age, gender of the one cell trained with and without pretraining).
    (inter,) = [f for f in split["findings"] if f["kind"] == "pretraining_interaction"]
    assert split["tests"] == 4 + 3 == len(cells) + len(inter["contrasts"])
    want = own_holm(
        [c["p_value"] for _, _, c in cells] + [c["p_value"] for c in inter["contrasts"]]
    )
    assert [c["p_adjusted"] for _, _, c in cells] == pytest.approx(want[:4], rel=1e-9)
    assert [c["p_adjusted"] for c in inter["contrasts"]] == pytest.approx(want[4:], rel=1e-9)
    one = {
        (r["pretrain"], t): r["paired"][t]["p_adjusted"]
        for r in whole["tables"][0]["rows"]
        if r["block"] == "multi-task"
        for t in ("age", "gender")
    }
    assert {(pre, t): c["p_adjusted"] for pre, t, c in cells} == one


# --- formats and options ------------------------------------------------------------------


def test_csv_and_latex_carry_the_statistics(uri):
    log_study(Study(uri), 10)
    doc = json.loads(render_report(uri, fmt="json"))
    row = mtl_row(doc)
    csv = pd.read_csv(io.StringIO(render_report(uri, fmt="csv")))
    line = csv[csv["block"] == "multi-task"].iloc[0]
    for task in THREE:
        for field in FIELDS:
            got, want = line[f"{task} {field}"], row["paired"][task][field]
            assert got == (pytest.approx(want) if isinstance(want, float) else want), field
    assert line["Δm ci_low"] == pytest.approx(row["delta_m"]["ci_low"])
    assert pd.isna(csv[csv["block"] == "single-task"].iloc[0]["gender p_value"])
    latex = render_report(uri, fmt="latex")
    assert r"$^{\dagger}$" in latex and r"$^{\ddagger}$" in latex  # ▲ and ▼
    assert "▲" not in latex and "p (Holm) $<$ 0.05" in latex


def test_alpha_sets_the_level_of_markers_and_intervals(uri, report_cli):
    values = log_study(Study(uri), 3)
    loose = report_cli("--tracking-uri", uri, "--alpha", "0.5", "--format", "json")
    assert loose.code == 0, loose.err
    doc = json.loads(loose.out)
    assert doc["alpha"] == 0.5 and doc["confidence"] == "50%"
    gender = mtl_row(doc)["paired"]["gender"]
    gains = [100 * (values["mtl"]["gender"][s] - values["gender"]["gender"][s]) for s in range(3)]
    half = stats.t.ppf(0.75, 2) * statistics.stdev(gains) / 3**0.5
    assert gender["ci_high"] - gender["ci_low"] == pytest.approx(2 * half, rel=1e-6)
    assert gender["significant"] is bool(gender["p_adjusted"] < 0.5)
    for bad in ("0", "1", "1.5", "-0.1"):
        result = report_cli("--tracking-uri", uri, "--alpha", bad)
        assert result.code == 2
        assert (
            result.err.strip() == f"error: --alpha must be between 0 and 1 (exclusive), got {bad}"
        )


def test_plot_draws_the_intervals(uri, tmp_path, report_cli):
    log_study(Study(uri), 3)
    png = tmp_path / "gains.png"
    result = report_cli("--tracking-uri", uri, "--plot", str(png), "-o", str(tmp_path / "r.md"))
    assert result.code == 0, result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the formulas alone ------------------------------------------------------------------


def test_holm_matches_its_definition_and_skips_untested_cells():
    rng = random.Random(0)
    for m in (1, 2, 5, 12):
        p = [rng.random() ** 3 for _ in range(m)]
        assert holm(p) == pytest.approx(own_holm(p))
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    got = holm([0.01, math.nan, 0.04])
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.04)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
def test_the_minimum_detectable_gain_has_80_percent_power(n):
    std, alpha = 1.5, 0.05
    mdd = min_detectable_difference(n, std, alpha)
    # Power of the two-sided paired t-test at that true gain, from scipy's noncentral t.
    df, nc = n - 1, mdd * n**0.5 / std
    t_c = stats.t.ppf(1 - alpha / 2, df)
    power = stats.nct.sf(t_c, df, nc) + stats.nct.sf(t_c, df, -nc)
    assert power == pytest.approx(0.8, abs=1e-6)
    # Never below the normal-approximation value, which it approaches as n grows.
    normal = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)) * std / n**0.5
    assert mdd >= normal
    if n >= 40:
        assert mdd == pytest.approx(normal, rel=0.05)


def test_no_test_without_spread_or_pairs():
    assert paired({0: 1.0}, {1: 1.0}, 1) is None
    same = paired({s: 0.9 for s in range(3)}, {s: 0.8 for s in range(3)}, 1)
    assert same.no_test == "no spread" and not same.tested and same.diff_mean == pytest.approx(0.1)
    assert math.isnan(min_detectable_difference(1, 1.0, 0.05))
