"""`mtl-sweep report` on runs logged into a throwaway sqlite store, following the contract."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report import build_report, render_report
from mtl_sweep.report.compare import delta_m, task_gain
from mtl_sweep.report.render import render

REAL_DATA = {"age": "chalearn", "gender": "celeba", "emotion": "fer2013", "smile": "celeba"}


# --- logging runs the way the runner does ------------------------------------------------


class Study:
    """Logs one sweep's runs with MlflowClient: a sweep run, then trial/pretrain children."""

    def __init__(self, uri: str, sweep: str = "study", experiment: str | None = None) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.sweep = sweep
        self.client = MlflowClient(tracking_uri=uri)
        name = experiment or sweep
        exp = self.client.get_experiment_by_name(name)
        self.exp_id = exp.experiment_id if exp else self.client.create_experiment(name)
        self.clock = 0  # ms; every run starts later than the one before
        run = self.client.create_run(
            self.exp_id,
            run_name=sweep,
            tags={C.KIND: C.KIND_SWEEP, C.SWEEP: sweep},
            start_time=self._tick(),
        )
        self.sweep_id = run.info.run_id

    def _tick(self) -> int:
        self.clock = max(self.clock + 1, time.time_ns() // 1_000_000)
        return self.clock

    def trial(
        self,
        tasks: tuple[str, ...] | str,
        results: Mapping[str, float] | None = None,
        *,
        seed: int | None = 0,
        backbone: str = "resnet18",
        pretrain: str = "none",
        weights: tuple[float, ...] | None = None,
        weighting: str = "fixed",
        label: str | None = None,
        status: str = "FINISHED",
        data: Mapping[str, str] = REAL_DATA,
        params: bool = True,
        kind: str = C.KIND_TRIAL,
        extra_tags: Mapping[str, str] | None = None,
        train: Mapping[str, object] | None = None,
    ) -> str:
        """Log one run; `results` maps task -> headline metric (accuracy as a fraction)."""
        from mlflow.entities import Metric, Param

        tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        weights = weights or (1.0,) * len(tasks)
        config: dict[str, object] = {
            "tasks": list(tasks),
            "backbone": backbone,
            "weighting": weighting,
            "loss_weights": dict(zip(tasks, weights, strict=True)),
            "seed": seed,
            "train": {"epochs": 4, "batch_size": 32, **(train or {})},
        }
        if kind == C.KIND_PRETRAIN:
            config["stage"] = pretrain
            config["source"] = {"kind": data.get("pretrain", "imdb_wiki"), "root": "/d"}
        else:
            config["data"] = {t: {"kind": data[t], "root": f"/data/{t}"} for t in tasks}
            config["pretrain"] = None if pretrain == "none" else {"stage": pretrain, "key": "k"}
        # Unseeded runs are all distinct trials; otherwise the key follows the config.
        ident = (kind, label, sorted(config.items()), self.clock if seed is None else None)
        key = hashlib.sha256(repr(ident).encode()).hexdigest()
        tags = {
            C.KIND: kind,
            C.SWEEP: self.sweep,
            C.KEY: key[:12],
            C.TASKS: "+".join(tasks),
            C.BACKBONE: backbone,
            C.PRETRAIN: pretrain,
            C.WEIGHTING: weighting,
            C.PARENT: self.sweep_id,
            **({C.SEED: str(seed)} if seed is not None else {}),
            **({C.LABEL: label} if label else {}),
            **(extra_tags or {}),
        }
        start = self._tick()
        run = self.client.create_run(self.exp_id, start_time=start, tags=tags)
        metrics = [
            Metric(C.TEST + PRIMARY_METRIC[t].name, v, start, 0)
            for t, v in (results or {}).items()
            if t in PRIMARY_METRIC
        ]
        metrics += [Metric(k, v, start, 0) for k, v in (results or {}).items() if "/" in k]
        logged = [Param(k, v) for k, v in C.flatten_params(config).items()] if params else []
        self.client.log_batch(run.info.run_id, metrics=metrics, params=logged)
        self.client.set_terminated(run.info.run_id, status, end_time=start + 500)
        return run.info.run_id

    def seeds(self, tasks, per_seed: list[Mapping[str, float]], **kw) -> None:
        """One finished trial per seed 0..n-1."""
        for seed, results in enumerate(per_seed):
            self.trial(tasks, results, seed=seed, **kw)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow sqlite store, made once (migrations take ~1.5 s)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def uri(tmp_path: Path, empty_store: Path) -> str:
    """This test's own store: a copy of the empty one at tmp_path/mlflow.db."""
    db = tmp_path / "mlflow.db"
    shutil.copy(empty_store, db)
    return f"sqlite:///{db}"


@pytest.fixture
def report_cli(cli, monkeypatch: pytest.MonkeyPatch) -> Callable:
    """The conftest `cli` runner with `report` registered (cli.py may not register it yet)."""
    from mtl_sweep.commands.main import cli as group
    from mtl_sweep.commands.report import report

    monkeypatch.setitem(group.commands, "report", report)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return lambda *args: cli("report", *args)


def md_table(text: str, title: str) -> list[dict[str, str]]:
    """The markdown pipe table under `## title`, as one dict per row."""
    lines = text.splitlines()
    start = lines.index(f"## {title}")
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    head, sep, *body = rows
    assert all(set(s) <= set(":-") for s in sep), "not a pipe table"
    return [dict(zip(head, r, strict=True)) for r in body]


def by_model(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["model"]: r for r in rows}


def ablation(study: Study, seeds: int = 3) -> None:
    """Four single-task trials and one four-task trial, from scratch, `seeds` seeds each."""
    study.seeds(("age",), [{"age": 5.0 + 0.2 * s} for s in range(seeds)])
    study.seeds(("gender",), [{"gender": 0.90 + 0.01 * s} for s in range(seeds)])
    study.seeds(("emotion",), [{"emotion": 0.50} for _ in range(seeds)])
    study.seeds(("smile",), [{"smile": 0.86} for _ in range(seeds)])
    study.seeds(
        ("age", "gender", "emotion", "smile"),
        [{"age": 4.8, "gender": 0.92, "emotion": 0.55, "smile": 0.87} for _ in range(seeds)],
    )


FOUR = "ResNet-18-Age_Gender_Emotion_Smile"
TITLE = "ResNet-18, no pretraining"
AGE, GENDER = "Age MAE (ChaLearn 2016)", "Gender Acc (%) (CelebA)"
EMOTION, SMILE = "Emotion Acc (%) (FER2013)", "Smile Acc (%) (CelebA)"


# --- Δm ----------------------------------------------------------------------------------


def test_delta_m_matches_the_worked_example_in_references():
    mtl = {"gender": 90.2, "smile": 87.0, "emotion": 55.2, "age": 11.8}
    stl = {"gender": 89.1, "smile": 86.2, "emotion": 51.5, "age": 11.4}
    assert round(delta_m(mtl, stl), 2) == 1.46
    # Accuracies as stored (fractions) give the same value: only ratios enter.
    frac = {t: v / 100 if t != "age" else v for t, v in mtl.items()}
    frac_s = {t: v / 100 if t != "age" else v for t, v in stl.items()}
    assert delta_m(frac, frac_s) == pytest.approx(delta_m(mtl, stl))
    # Lower-is-better flips the sign: a worse (higher) MAE is a negative gain.
    assert task_gain("age", 11.8, 11.4) == pytest.approx(-100 * 0.4 / 11.4)


def test_delta_m_in_the_table_matches_the_worked_example(uri):
    study = Study(uri)
    study.trial(("gender",), {"gender": 0.891})
    study.trial(("smile",), {"smile": 0.862})
    study.trial(("emotion",), {"emotion": 0.515})
    study.trial(("age",), {"age": 11.4})
    four = ("age", "gender", "emotion", "smile")
    study.trial(four, {"age": 11.8, "gender": 0.902, "emotion": 0.552, "smile": 0.870})
    text = render_report(uri)
    row = by_model(md_table(text, TITLE))[FOUR]
    assert row["Δm (%)"] == "+1.46"
    assert "positive means multi-task helps" in text
    assert "s_t = +1 where higher is better" in text


# --- cells -------------------------------------------------------------------------------


def test_cells_are_mean_and_sample_std_over_seeds_with_n_stated_once(uri):
    ablation(Study(uri))
    text = render_report(uri)
    rows = md_table(text, TITLE)
    assert [r["model"] for r in rows] == [
        FOUR,
        "ResNet-18-Age",
        "ResNet-18-Gender",
        "ResNet-18-Emotion",
        "ResNet-18-Smile",
    ]
    table = by_model(rows)
    assert list(rows[0]) == ["model", AGE, GENDER, EMOTION, SMILE, "weights", "Δm (%)"]
    # age 5.0, 5.2, 5.4: mean 5.2, sample std 0.2; gender 90, 91, 92 %: std 1.0
    assert table["ResNet-18-Age"][AGE] == "5.20 ± 0.20"
    assert table["ResNet-18-Gender"][GENDER] == "91.0 ± 1.0"
    assert table["ResNet-18-Emotion"][EMOTION] == "50.0 ± 0.0"
    # Best per column in bold: the four-task row wins everywhere here.
    assert table[FOUR][AGE] == "**4.80 ± 0.00**"
    assert table[FOUR][GENDER] == "**92.0 ± 0.0**"
    assert table[FOUR]["weights"] == "1, 1, 1, 1"
    # Cells of tasks a row did not train stay empty; single-task rows have no weights.
    assert table["ResNet-18-Age"][GENDER] == ""
    assert table["ResNet-18-Age"]["weights"] == table["ResNet-18-Age"]["Δm (%)"] == ""
    # The table says its n; what every table shares is said once, in "How to read this".
    assert "n = 3 seeds." in text
    assert text.count("mean ± sample standard deviation") == 1
    assert text.count("Δm (%) = 100/T") == 1
    assert text.index("## Findings") < text.index("## How to read this") < text.index(f"## {TITLE}")
    assert "(n=" not in text
    # Δm seed by seed, then its mean and 95% Student-t interval over the seeds.
    mtl = {"age": 4.8, "gender": 0.92, "emotion": 0.55, "smile": 0.87}
    per_seed = [
        delta_m(
            mtl, {"age": 5.0 + 0.2 * s, "gender": 0.90 + 0.01 * s, "emotion": 0.5, "smile": 0.86}
        )
        for s in range(3)
    ]
    mean = statistics.mean(per_seed)
    half = scipy.stats.t.ppf(0.975, 2) * statistics.stdev(per_seed) / 3**0.5
    assert table[FOUR]["Δm (%)"] == f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def test_fixed_weights_and_strategies_are_separate_rows(uri):
    study = Study(uri)
    ablation(study, seeds=1)
    four = ("age", "gender", "emotion", "smile")
    res = {"age": 4.9, "gender": 0.90, "emotion": 0.52, "smile": 0.86}
    study.trial(four, res, weights=(1, 0.1, 1, 1))
    study.trial(four, res, weighting="uncertainty")
    rows = md_table(render_report(uri), TITLE)
    assert [(r["model"], r["weights"]) for r in rows[:3]] == [
        (FOUR, "1, 1, 1, 1"),
        (FOUR, "1, 0.1, 1, 1"),
        (FOUR, "uncertainty"),
    ]
    assert all(r["Δm (%)"].strip("*").startswith(("+", "-")) for r in rows[:3])


def test_delta_m_uses_only_the_seeds_shared_with_the_single_task_rows(uri):
    study = Study(uri)
    study.seeds(("age",), [{"age": 5.0}, {"age": 6.0}, {"age": 9.0}])
    study.seeds(("gender",), [{"gender": 0.80}, {"gender": 0.90}, {"gender": 0.70}])
    study.seeds(("age", "gender"), [{"age": 5.0, "gender": 0.85}, {"age": 5.0, "gender": 0.85}])
    report = build_report(uri)
    (row,) = [r for r in report.tables[0].rows if r.block == "multi-task"]
    # Seeds 0 and 1 only, Δm seed by seed, then averaged.
    assert row.delta_m.n == 2
    per_seed = [
        delta_m({"age": 5.0, "gender": 0.85}, {"age": 5.0, "gender": 0.80}),
        delta_m({"age": 5.0, "gender": 0.85}, {"age": 6.0, "gender": 0.90}),
    ]
    assert row.delta_m.mean == pytest.approx(statistics.mean(per_seed))
    assert row.delta_m.std == pytest.approx(statistics.stdev(per_seed))
    age_gains = [task_gain("age", 5.0, 5.0), task_gain("age", 5.0, 6.0)]
    assert row.gains["age"].mean == pytest.approx(statistics.mean(age_gains))
    rows = by_model(md_table(render(report), TITLE))
    # n differs between cells, so every cell states its own.
    assert rows["ResNet-18-Age_Gender"]["Δm (%)"].endswith("(n=2)")
    assert rows["ResNet-18-Age"][AGE] == "6.67 ± 2.08 (n=3)"


def test_rows_that_differ_in_settings_are_told_apart_and_compared_like_for_like(uri):
    study = Study(uri)
    for epochs, (age, gender) in ((4, (5.0, 0.90)), (8, (4.0, 0.92))):
        train = {"epochs": epochs}
        study.trial(("age",), {"age": age}, train=train)
        study.trial(("gender",), {"gender": gender}, train=train)
        study.trial(("age", "gender"), {"age": 4.5, "gender": 0.91}, train=train)
    rows = md_table(render_report(uri), TITLE)
    deltas = {r["variant"]: r["Δm (%)"].strip("*") for r in rows if r["weights"]}
    want = {
        e: f"{delta_m({'age': 4.5, 'gender': 0.91}, {'age': a, 'gender': g}):+.2f}"
        for e, (a, g) in ((4, (5.0, 0.90)), (8, (4.0, 0.92)))
    }
    assert deltas == {"train.epochs=4": want[4], "train.epochs=8": want[8]}
    assert want[4] != want[8]


def test_an_empty_sweep_reports_no_runs_in_every_format(uri):
    Study(uri)
    assert "No trial or pretraining runs yet." in render_report(uri)
    assert json.loads(render_report(uri, fmt="json"))["tables"] == []
    assert pd.read_csv(io.StringIO(render_report(uri, fmt="csv"))).empty


def test_failed_and_missing_trials_are_counted_and_footnoted(uri):
    study = Study(uri)
    ablation(study, seeds=3)
    # Gender seed 1 failed and seed 2 never ran; smile failed on every seed.
    for run in study.client.search_runs([study.exp_id], f"tags.`{C.TASKS}` = 'gender'"):
        seed = run.data.tags[C.SEED]
        if seed == "1":
            study.client.set_terminated(run.info.run_id, "FAILED")
        elif seed == "2":
            study.client.delete_run(run.info.run_id)
    for run in study.client.search_runs([study.exp_id], f"tags.`{C.TASKS}` = 'smile'"):
        study.client.set_terminated(run.info.run_id, "FAILED")
    text = render_report(uri)
    rows = by_model(md_table(text, TITLE))
    assert rows["ResNet-18-Gender"][GENDER] == "90.0 (n=1)"
    assert rows["ResNet-18-Smile"][SMILE] == "—"
    assert rows[FOUR]["Δm (%)"] == "—"
    assert "- ResNet-18-Gender: seed 1 failed; seed 2 missing (no run)." in text
    assert "- ResNet-18-Smile: seeds 0, 1, 2 failed." in text
    assert "— : no finished run for that cell" in text
    assert "no finished seed shared with every single-task row" in text
    assert "10 trials finished, 4 failed, 0 unfinished, 1 missing" in text


def test_runs_of_other_tools_superseded_runs_and_other_sweeps_are_ignored(uri):
    study = Study(uri)
    ablation(study, seeds=1)
    before = render_report(uri)
    # Another tool's runs in the same experiment: same metric names, none of our tags.
    stranger = study.client.create_run(study.exp_id, tags={"team": "other"})
    study.client.log_metric(stranger.info.run_id, "test/age_mae", 0.1)
    study.client.set_terminated(stranger.info.run_id)
    # A replaced run (--rerun) with a better number, and a run still going.
    study.trial(("age",), {"age": 0.5}, extra_tags={C.SUPERSEDED_BY: "abc"})
    study.trial(("age",), {"age": 0.4}, status="RUNNING", seed=0, train={"epochs": 5})
    # An older sweep in another experiment.
    Study(uri, sweep="other", experiment="elsewhere").trial(("age",), {"age": 0.3})
    # Only the running trial shows up: a new (unfinished) row variant, no numbers.
    after = render_report(uri, sweep="study")
    table = md_table(after, TITLE)
    assert by_model(md_table(before, TITLE))[FOUR] == {
        k: v for k, v in table[0].items() if k in md_table(before, TITLE)[0]
    }
    ages = [r for r in table if r["model"] == "ResNet-18-Age"]
    assert {r[AGE] for r in ages} == {"5.00", "—"}
    assert "0.40" not in after and "0.50" not in after and "0.10" not in after


def test_the_contract_tags_carry_the_names_design_md_gives_them():
    # Other tools query these names (docs/design.md, the run contract); a rename breaks them.
    assert (C.KIND, C.SWEEP, C.KEY, C.TASKS, C.BACKBONE, C.PRETRAIN, C.WEIGHTING, C.SEED) == (
        "mtl_sweep.kind",
        "mtl_sweep.sweep",
        "mtl_sweep.trial_key",
        "mtl_sweep.tasks",
        "mtl_sweep.backbone",
        "mtl_sweep.pretrain",
        "mtl_sweep.weighting",
        "mtl_sweep.seed",
    )
    assert C.PARENT == "mlflow.parentRunId"


def test_runs_logged_under_the_misnamed_tasks_tag_still_report(uri):
    study = Study(uri)
    ablation(study, seeds=1)
    before = render_report(uri)
    # Runs logged between 150e2c3 and the fix carry their tasks as mtl_core.tasks.
    for run in study.client.search_runs([study.exp_id], f"tags.`{C.KIND}` = 'trial'"):
        tasks = run.data.tags[C.TASKS]
        study.client.delete_tag(run.info.run_id, C.TASKS)
        study.client.set_tag(run.info.run_id, C.TASKS_MISNAMED, tasks)
    assert render_report(uri) == before
    assert md_table(before, TITLE)


def test_a_rerun_replaces_the_superseded_run(uri):
    study = Study(uri)
    study.trial(("age",), {"age": 7.0}, extra_tags={C.SUPERSEDED_BY: "new"})
    study.trial(("age",), {"age": 6.0})
    assert by_model(md_table(render_report(uri), TITLE))["ResNet-18-Age"][AGE] == "6.00"


def test_pretraining_jobs_get_their_own_table_and_reference_models_a_block(uri):
    study = Study(uri)
    for pretrain in ("none", "imdb_wiki"):
        study.trial(("age",), {"age": 6.0}, pretrain=pretrain)
        study.trial(("age", "gender"), {"age": 5.5, "gender": 0.9}, pretrain=pretrain)
        study.trial(("gender",), {"gender": 0.88}, pretrain=pretrain)
    study.trial(("age", "gender"), {"age": 8.0, "gender": 0.7}, pretrain="imdb_wiki",
                kind=C.KIND_PRETRAIN, seed=0)  # fmt: skip
    study.trial("age", {"age": 4.0}, backbone="dex", label="DEX", pretrain="imdb_wiki")
    study.trial("age", {"age": 6.5}, backbone="ssrnet", label="SSR-Net")
    study.trial("age", {"age": 6.6}, backbone="dex", label="DEX-scratch")
    text = render_report(uri)
    jobs = md_table(text, "Pretraining jobs")
    assert jobs == [
        {
            "model": "Pretrained-ResNet-18-Age_Gender",
            "Age MAE (IMDB-WIKI)": "8.00",
            "Gender Acc (%) (IMDB-WIKI)": "70.0",
        }
    ]
    pre = md_table(text, "ResNet-18, pretrained on imdb_wiki (IMDB-WIKI)")
    assert [r["model"] for r in pre] == [
        "ResNet-18-Age_Gender",
        "ResNet-18-Age",
        "ResNet-18-Gender",
        "*reference models*",
        "DEX",
    ]
    assert by_model(pre)["DEX"][AGE] == "**4.00**"
    assert by_model(pre)["DEX"][GENDER] == ""
    scratch = [r["model"] for r in md_table(text, TITLE)]
    assert scratch[-3:] == ["*reference models*", "DEX-scratch", "SSR-Net"]
    assert "DEX" not in scratch


def test_runs_without_params_degrade_to_headings_without_datasets(uri):
    study = Study(uri)
    study.trial(("age",), {"age": 6.0}, params=False, seed=None)
    study.trial(("age",), {"age": 5.0}, params=False, seed=None)
    study.trial(("age", "smile"), {"age": 5.5, "smile": 0.9}, params=False, seed=None)
    study.trial(("smile",), {"smile": 0.8}, params=False, seed=None)
    rows = by_model(md_table(render_report(uri), TITLE))
    assert rows["ResNet-18-Age"]["Age MAE"] == "**5.50 ± 0.71 (n=2)**"  # ties are all best
    assert rows["ResNet-18-Age_Smile"]["weights"] == "fixed"
    assert rows["ResNet-18-Age_Smile"]["Δm (%)"].endswith("(n=1)")


def test_grouping_is_up_to_the_user(uri, report_cli):
    study = Study(uri)
    for pretrain in ("none", "imdb_wiki"):
        study.trial(("age",), {"age": 6.0}, pretrain=pretrain)
    one = report_cli("--tracking-uri", uri, "--group-by", "none")
    assert one.code == 0, one.err
    rows = md_table(one.out, "All trials")
    assert [(r["model"], r["pretraining"]) for r in rows] == [
        ("ResNet-18-Age", "none"),
        ("ResNet-18-Age", "imdb_wiki"),
    ]
    bad = report_cli("--tracking-uri", uri, "--group-by", "colour")
    assert bad.code == 2
    assert "unknown --group-by key 'colour'" in bad.err


# --- formats -----------------------------------------------------------------------------


def test_every_format_parses_back(uri):
    ablation(Study(uri), seeds=2)
    report = build_report(uri)

    csv = pd.read_csv(io.StringIO(render(report, "csv")))
    four = csv[csv["model"] == FOUR].iloc[0]
    assert four[f"{GENDER} mean"] == pytest.approx(92.0)
    assert four[f"{AGE} n"] == 2
    assert list(csv["block"]) == ["multi-task"] + ["single-task"] * 4

    doc = json.loads(render(report, "json"))
    (table,) = doc["tables"]
    assert table["n"] == 2
    age = table["rows"][1]
    assert age["model"] == "ResNet-18-Age"
    assert age["cells"]["test/age_mae"]["mean"] == pytest.approx(5.1)
    assert age["cells"]["test/gender_acc"] is None
    assert table["rows"][0]["cells"]["test/age_mae"]["best"] is True

    latex = render(report, "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{", r"\begin{tabular}"):
        assert rule in latex
    assert r"\textbf{4.80 $\pm$ 0.00}" in latex
    assert r"ResNet-18-Age\_Gender\_Emotion\_Smile" in latex
    assert r"Gender Acc (\%) (CelebA)" in latex
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    assert body.count(r"\\") == 5  # one line per row

    assert md_table(render(report, "markdown"), TITLE)[0]["model"] == FOUR
    github = render(report, "github")
    assert "|---" in github.replace(" ", "").replace(":", "")

    page = render(report, "html")
    # The table, then its paired differences.
    assert page.count("<table>") == 2 and page.count("<details>") == 2  # folded captions
    assert "<b>4.80 ± 0.00</b>" in page


def test_latex_marks_the_reference_block_with_a_rule(uri):
    study = Study(uri)
    study.trial(("age",), {"age": 6.0})
    study.trial("age", {"age": 6.5}, backbone="ssrnet", label="SSR-Net")
    latex = render_report(uri, fmt="latex")
    assert r"\multicolumn{2}{l}{\textit{Reference models}}" in latex
    assert "@@" not in latex


# --- the command -------------------------------------------------------------------------


def test_report_with_no_arguments_reports_the_latest_sweep_in_the_cwd_store(
    uri, tmp_path, monkeypatch, report_cli
):
    Study(uri, sweep="old").trial(("age",), {"age": 9.0})
    ablation(Study(uri, sweep="ablation"), seeds=1)
    monkeypatch.chdir(tmp_path)  # the store is tmp_path/mlflow.db, the default
    result = report_cli()
    assert result.code == 0, result.err
    assert "# mtl-sweep report: sweep `ablation`" in result.out
    older = report_cli("--sweep", "old", "--format", "json")
    assert json.loads(older.out)["sweep"] == "old"


def test_report_writes_files_and_a_plot(uri, tmp_path, report_cli):
    ablation(Study(uri), seeds=2)
    out, png = tmp_path / "out" / "report.csv", tmp_path / "gains.png"
    result = report_cli("--tracking-uri", uri, "--out", str(out), "--plot", str(png))
    assert result.code == 0, result.err
    assert pd.read_csv(out)["model"].iloc[0] == FOUR  # the format follows the suffix
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_baselines_is_a_user_error(uri, tmp_path, report_cli):
    Study(uri).trial(("age", "gender"), {"age": 5.0, "gender": 0.9})
    result = report_cli("--tracking-uri", uri, "--plot", str(tmp_path / "p.png"))
    assert result.code == 2
    assert "--plot" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--experiment", "nope"), "unknown experiment 'nope'"),
        (("--sweep", "nope"), "unknown sweep 'nope' in"),
    ],
)
def test_unknown_experiment_or_sweep_lists_the_known_ones(uri, report_cli, args, message):
    Study(uri, sweep="ablation")
    result = report_cli("--tracking-uri", uri, *args)
    assert result.code == 2
    assert message in result.err and "ablation" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_missing_store_is_a_user_error_and_is_not_created(tmp_path, report_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = report_cli()
    assert result.code == 2
    assert "no MLflow store at sqlite:///" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "mlflow.db").exists()


def test_a_store_without_sweeps_is_a_user_error(uri, report_cli):
    result = report_cli("--tracking-uri", uri)
    assert result.code == 2
    assert "no mtl-sweep sweep" in result.err


def test_importing_the_report_package_is_light():
    import subprocess
    import sys

    code = (
        "import sys, mtl_sweep.report, mtl_sweep.commands.report; "
        "print(sorted(m for m in ('mlflow', 'matplotlib', 'pandas', 'torch', 'ray') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
