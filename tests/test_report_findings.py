"""The findings: verdicts per backbone x pretraining group, and the pretraining interaction,
checked against scipy on planted studies logged through the run contract."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import numpy as np
import pytest
import scipy.stats

from mtl_sweep.report import build_report
from mtl_sweep.report.findings import analyse
from mtl_sweep.report.model.findings import DELTA_M as DELTA
from mtl_sweep.report.model.findings import NO_DIFFERENCE, UNTESTED
from mtl_sweep.report.model.findings import VERDICT_BETTER as BETTER
from mtl_sweep.report.model.findings import VERDICT_WORSE as WORSE
from mtl_sweep.report.stats import holm, min_detectable_difference

from .test_report import Study, empty_store, uri  # noqa: F401

SEEDS = 6
PAIR = ("age", "gender")
SIGN = {"age": -1, "gender": 1}  # lower MAE is better, higher accuracy is better


def planted(rng: np.random.Generator) -> dict[str, dict[str, dict[int, float]]]:
    """pretrain -> side ('age', 'gender' single-task, or 'multi:<task>') -> seed -> value.

    From scratch the two-task model is clearly better on age (MAE 0.5 lower) and clearly
    worse on gender (3 points lower); after pretraining both effects shrink to noise.
    """
    out: dict[str, dict[str, dict[int, float]]] = {}
    for pretrain, age_gain, gender_gain in (("none", 0.5, -0.03), ("imdb_wiki", 0.0, 0.0)):
        age = 5.0 + rng.normal(0, 0.2, SEEDS)
        gender = 0.90 + rng.normal(0, 0.01, SEEDS)
        out[pretrain] = {
            "age": dict(enumerate(age)),
            "gender": dict(enumerate(gender)),
            "multi:age": dict(enumerate(age - age_gain + rng.normal(0, 0.05, SEEDS))),
            "multi:gender": dict(enumerate(gender + gender_gain + rng.normal(0, 0.004, SEEDS))),
        }
    return out


def log(study: Study, values, pretrains=("none", "imdb_wiki")) -> None:
    for pretrain in pretrains:
        v = values[pretrain]
        for task in PAIR:
            for seed, x in v[task].items():
                study.trial((task,), {task: x}, seed=seed, pretrain=pretrain)
        for seed in v["age"]:
            results = {t: v[f"multi:{t}"][seed] for t in PAIR}
            study.trial(PAIR, results, seed=seed, pretrain=pretrain)


def rows_of(report):
    return [r for t in report.tables for r in t.rows]


def delta_per_seed(v) -> np.ndarray:
    """Δm (%) per seed, from the planted values (the formula of REFERENCES.md)."""
    terms = [
        100
        * SIGN[t]
        * (np.array(list(v[f"multi:{t}"].values())) - np.array(list(v[t].values())))
        / np.array(list(v[t].values()))
        for t in PAIR
    ]
    return np.mean(terms, axis=0)


def gains_per_seed(v, task) -> np.ndarray:
    return SIGN[task] * (
        np.array(list(v[f"multi:{task}"].values())) - np.array(list(v[task].values()))
    )


@pytest.fixture
def study_values(uri):  # noqa: F811
    values = planted(np.random.default_rng(7))
    log(Study(uri), values)
    return values


def test_the_interaction_is_the_seedwise_difference_tested_in_the_reports_holm_family(
    uri,  # noqa: F811
    study_values,
):
    found = analyse(rows_of(build_report(uri)))
    (inter,) = found.interactions
    assert inter.pretrained.pretrain == "imdb_wiki" and inter.scratch.pretrain == "none"
    assert [c.what for c in inter.contrasts] == [DELTA, "age", "gender"]

    # scipy, from the planted values: pretrained − not, seed by seed.
    diffs = {
        DELTA: delta_per_seed(study_values["imdb_wiki"]) - delta_per_seed(study_values["none"])
    }
    for task in PAIR:
        diffs[task] = gains_per_seed(study_values["imdb_wiki"], task) - gains_per_seed(
            study_values["none"], task
        )
    raw_inter = []
    for c in inter.contrasts:
        d = diffs[c.what]
        t = scipy.stats.ttest_1samp(d, 0.0)
        low, high = scipy.stats.t.interval(0.95, len(d) - 1, d.mean(), scipy.stats.sem(d))
        assert c.test.n == SEEDS
        assert c.test.diff_mean == pytest.approx(d.mean())
        assert (c.test.ci_low, c.test.ci_high) == pytest.approx((low, high))
        assert c.test.p_value == pytest.approx(t.pvalue)
        raw_inter.append(t.pvalue)

    # The family: the four paired tests (two cells x two tasks), then the three contrasts.
    raw_paired = []
    for pretrain in ("none", "imdb_wiki"):
        v = study_values[pretrain]
        for task in PAIR:
            raw_paired.append(scipy.stats.ttest_1samp(gains_per_seed(v, task), 0.0).pvalue)
    expected = holm(raw_paired + raw_inter)
    assert found.tests == 7
    got_inter = [c.test.p_adjusted for c in inter.contrasts]
    assert got_inter == pytest.approx(expected[4:])
    cells = {g.pretrain: g.cells[0] for g in found.groups}
    got_paired = [cells[p].row.paired[t].p_adjusted for p in ("none", "imdb_wiki") for t in PAIR]
    assert got_paired == pytest.approx(expected[:4])
    # Pretraining removed a clear age gain: the Δm contrast is negative and resolved.
    assert inter.delta is not None and inter.delta.test.diff_mean < 0
    assert inter.delta.verdict == WORSE


def test_verdicts_per_group_follow_the_holm_adjusted_tests(uri, study_values):  # noqa: F811
    found = analyse(rows_of(build_report(uri)))
    assert [(g.backbone, g.pretrain) for g in found.groups] == [
        ("resnet18", "none"),
        ("resnet18", "imdb_wiki"),
    ]
    scratch, pretrained = (g.cells[0] for g in found.groups)
    verdicts = {v.task: v.verdict for v in scratch.verdicts}
    assert verdicts == {"age": BETTER, "gender": WORSE}
    assert {v.verdict for v in pretrained.verdicts} <= {NO_DIFFERENCE, BETTER, WORSE}
    for v in pretrained.verdicts:
        gains = gains_per_seed(study_values["imdb_wiki"], v.task)
        expected = min_detectable_difference(SEEDS, float(np.std(gains, ddof=1)), 0.05)
        assert v.detectable == pytest.approx(expected)
        assert v.verdict == (NO_DIFFERENCE if not v.test.significant else v.verdict)
    # Δm with its interval, as the table shows it.
    d = delta_per_seed(study_values["none"])
    assert scratch.delta_m.mean == pytest.approx(d.mean())
    low, high = scipy.stats.t.interval(0.95, SEEDS - 1, d.mean(), scipy.stats.sem(d))
    assert (scratch.delta_m.low, scratch.delta_m.high) == pytest.approx((low, high))


def test_one_seed_cannot_be_tested(uri):  # noqa: F811
    values = planted(np.random.default_rng(1))
    one = {p: {k: {0: v[0]} for k, v in sides.items()} for p, sides in values.items()}
    log(Study(uri), one)
    found = analyse(rows_of(build_report(uri)))
    assert found.tests == 0
    assert all(v.verdict == UNTESTED for g in found.groups for c in g.cells for v in c.verdicts)
    assert all(math.isnan(v.detectable) for g in found.groups for c in g.cells for v in c.verdicts)
    (inter,) = found.interactions
    assert {c.verdict for c in inter.contrasts} == {UNTESTED}
    assert all(c.test.n == 1 for c in inter.contrasts)


def test_a_pretrained_cell_without_its_scratch_twin_is_listed_not_tested(uri):  # noqa: F811
    values = planted(np.random.default_rng(2))
    log(Study(uri), values, pretrains=("imdb_wiki",))
    found = analyse(rows_of(build_report(uri)))
    assert found.interactions == ()
    assert [r.pretrain for r in found.unmatched] == ["imdb_wiki"]
    assert found.tests == 2  # the two paired tests alone


def test_the_findings_text_answers_both_questions_and_says_when_seeds_cannot_resolve(uri):  # noqa: F811
    from mtl_sweep.report.findings_section import findings_json, lines

    rng = np.random.default_rng(3)
    values = planted(rng)
    # Pretraining leaves the gains as they were, with noise: nothing to resolve.
    values["imdb_wiki"] = {k: dict(v) for k, v in values["none"].items()}
    for side in ("multi:age", "multi:gender"):
        noise = rng.normal(0, 0.3 if side == "multi:age" else 0.02, SEEDS)
        values["imdb_wiki"][side] = {
            s: x + e for (s, x), e in zip(values["none"][side].items(), noise, strict=True)
        }
    log(Study(uri), values)
    found = analyse(rows_of(build_report(uri)))
    text = lines(found)
    assert text[0].startswith("When does multi-task beat single-task? In ")
    assert "of 4 (cell, task) comparisons" in text[0]
    assert text[1].startswith("Does pretraining change that? For 0 of 1 multi-task cells")
    assert "; for 1 the seeds cannot resolve it" in text[1]
    inter = [t for t in text if "pretrained on imdb_wiki vs" in t]
    assert len(inter) == 1 and "seeds cannot resolve it: the interval spans zero" in inter[0]
    assert "ResNet-18, no pretraining: ResNet-18-Age_Gender (1, 1), 6 seeds: Δm " in text[2]
    assert "better than single-task on Age MAE (+0.5" in text[2]
    records = findings_json(found)
    assert [r["kind"] for r in records] == ["multi_vs_single"] * 2 + ["pretraining_interaction"]
    gender = next(t for t in records[0]["tasks"] if t["task"] == "gender")
    assert gender["unit"] == "points" and gender["verdict"] == WORSE
    assert gender["diff_mean"] == pytest.approx(
        100 * gains_per_seed(values["none"], "gender").mean()
    )


def test_the_forest_plot_has_a_row_per_cell_and_task_in_the_paired_tables_units(
    uri,  # noqa: F811
    study_values,
    tmp_path,
):
    from mtl_sweep.report.document import build_document
    from mtl_sweep.report.forest import forest_panels
    from mtl_sweep.report.writers.plot import write_plots

    report = build_report(uri)
    panels = forest_panels(rows_of(report), report.alpha)
    assert [p.axis.split(":")[0] for p in panels] == [
        "Age MAE",
        "Gender Acc",
        "Δm (%), mean of the tasks' relative gains",
    ]
    gender_panel = panels[1]
    assert "(points; + = higher Gender Acc)" in gender_panel.axis
    assert [line.label for line in gender_panel.rows] == [
        "ResNet-18-Age_Gender (1, 1), no pretraining",
        "ResNet-18-Age_Gender (1, 1), pretrained on imdb_wiki",
    ]
    gender = gender_panel.rows[0]  # points, as in the paired table: 100 x the fraction
    gains = 100 * gains_per_seed(study_values["none"], "gender")
    assert gender.mean == pytest.approx(gains.mean())
    low, high = scipy.stats.t.interval(0.95, SEEDS - 1, gains.mean(), scipy.stats.sem(gains))
    assert (gender.low, gender.high) == pytest.approx((low, high))
    assert gender.direction == -1 and panels[0].rows[0].direction == 1
    (png,) = write_plots(build_document(report), tmp_path / "forest.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """A strict walk over an HTML page: the doctype, every element closed in order."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doctype = ""
        self.stack: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []
        self.problems: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs) -> None:
        self.seen.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
        else:
            self.stack.pop()


def test_the_html_report_is_a_standalone_styled_document(uri, study_values):  # noqa: F811
    from mtl_sweep.report.render import render

    page = render(build_report(uri), "html")
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.doctype.lower() == "doctype html"
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack)
    tags = [t for t, _ in parser.seen]
    assert tags[:3] == ["html", "head", "meta"] and "body" in tags
    assert ("meta", {"charset": "utf-8"}) in parser.seen
    assert tags.count("style") == 1 and "table {" in page and "border" in page
    # Nothing to fetch: no script, stylesheet, image or font, no URL in an attribute.
    assert not {"script", "link", "img", "iframe"} & set(tags)
    assert not [a for _, attrs in parser.seen for a in attrs.values() if a and "//" in a]
    assert "url(" not in page and "@import" not in page
    # The findings open the page; ▲/▼ are coloured; captions fold away.
    assert page.index("<h2>Findings</h2>") < page.index("<h2>How to read this</h2>")
    assert page.index("<h2>How to read this</h2>") < page.index("<h2>ResNet-18, no pretraining")
    assert '<span class="up">▲</span>' in page and '<span class="down">▼</span>' in page
    assert ".up { color:" in page and ".down { color:" in page
    assert page.count("<details>") == page.count("<figure>") >= 5
    assert 'td[style*="right"]' in page  # numbers right-aligned in tabular figures


def test_every_text_format_opens_with_the_findings_and_json_lists_them(uri, study_values):  # noqa: F811
    import json

    from mtl_sweep.report.render import render

    report = build_report(uri)
    first_table = "ResNet-18, no pretraining"
    for fmt, heading in (
        ("markdown", "## Findings"),
        ("github", "## Findings"),
        ("latex", r"\section*{Findings}"),
        ("html", "<h2>Findings</h2>"),
    ):
        text = render(report, fmt)
        found, table = text.find(heading), text.find(first_table)
        assert 0 < found < table, fmt
        assert text.count("When does multi-task beat single-task?") == 1, fmt
    doc = json.loads(render(report, "json"))
    assert list(doc).index("findings") < list(doc).index("tables")
    assert doc["tests"] == 7 and len(doc["findings"]) == 3
    assert doc["how_to_read"][0].startswith("Each cell is the mean ± sample standard deviation")
