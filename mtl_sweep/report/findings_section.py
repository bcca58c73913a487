"""The findings section, which opens every text format: the study's two questions
answered in words and numbers, the pretraining interaction as a table, and the JSON
`findings` list. (The CSV stays one record per table row, for the tables' readers.)

Generated from the report's `Findings` alone, never written by hand: the two answers
first, then a line per multi-task cell (its verdict per task and Δm), then a line per
pretraining interaction, said plainly when the seeds cannot resolve it. Gains are in the
paired table's units (points for accuracies, years for Age MAE), Δm in percent.
"""

from __future__ import annotations

import math
from typing import Any

from mtl_core.backbones import display_name
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.cells import (
    DELTA_DECIMALS,
    gain_decimals,
    gain_text,
    gain_unit,
    interval_text,
    num,
    p_text,
    shown,
)
from mtl_sweep.report.findings import NO_PRETRAIN
from mtl_sweep.report.model.base import Interval, Paired, Row
from mtl_sweep.report.model.document import Cell, Section, TextTable
from mtl_sweep.report.model.findings import (
    DELTA_M,
    NO_DIFFERENCE,
    UNTESTED,
    VERDICT_BETTER,
    VERDICT_WORSE,
    CellFinding,
    Contrast,
    Findings,
    Interaction,
    Verdict,
)
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.stats import POWER

TITLE = "Findings"
INTERACTION_HEADERS = [
    "model",
    "what",
    "with pretraining",
    "without",
    "difference",
    "CI",
    "p (Holm)",
    "reading",
]


def setting(backbone: str, pretrain: str) -> str:
    """`ResNet-18, no pretraining` or `ResNet-18, pretrained on imdb_wiki`."""
    how = "no pretraining" if pretrain == NO_PRETRAIN else f"pretrained on {pretrain}"
    return f"{display_name(backbone)}, {how}"


def _model(row: Row) -> str:
    """`ResNet-18-Age_Gender (1, 1)`, with the settings that tell apart look-alike rows."""
    extra = ", ".join(x for x in (row.weights_text, row.variant) if x)
    return f"{row.name} ({extra})" if extra else row.name


def _label(task: str) -> str:
    return PRIMARY_METRIC[task].label.removesuffix(" (%)")


def _unit(task: str) -> str:
    return gain_unit(PRIMARY_METRIC[task])


def _delta(stat: Interval | None) -> str:
    """`Δm −3.21 % [−5.02, −1.40]`, `Δm +1.2 %` for one seed, or that it is missing."""
    if stat is None:
        return "no Δm"
    text = f"Δm {stat.mean:+.{DELTA_DECIMALS}f} %"
    if stat.n > 1:
        text += " " + interval_text(stat.low, stat.high, DELTA_DECIMALS)
    return text


def _gain(task: str, test: Paired) -> str:
    """`+0.520 years [+0.101, +0.939]` in display units."""
    metric = PRIMARY_METRIC[task]
    low, high = shown(test.ci_low, metric), shown(test.ci_high, metric)
    ci = interval_text(low, high, gain_decimals(metric)) if test.n > 1 else ""
    return f"{gain_text(test.diff_mean, metric)} {_unit(task)}" + (f" {ci}" if ci else "")


def _size(value: float, task: str) -> str:
    metric = PRIMARY_METRIC[task]
    return f"{shown(value, metric):.{gain_decimals(metric)}f} {_unit(task)}"


def _before_holm(test: Paired) -> str:
    """Why an interval that excludes zero is still no finding: Holm's correction."""
    excludes = test.ci_low > 0 or test.ci_high < 0
    return ", significant before Holm's correction only" if excludes else ""


def cell_line(cell: CellFinding) -> str:
    """One multi-task cell: its Δm, then the tasks it is better on, worse on, and where
    the seeds detect no difference (with the smallest gain they would detect)."""
    by = {v: [x for x in cell.verdicts if x.verdict == v] for v in (VERDICT_BETTER, VERDICT_WORSE)}
    by[NO_DIFFERENCE] = [x for x in cell.verdicts if x.verdict == NO_DIFFERENCE]
    by[UNTESTED] = [x for x in cell.verdicts if x.verdict == UNTESTED]
    n = max((v.test.n for v in cell.verdicts), default=0)
    parts = [f"{_model(cell.row)}, {n} seed{'s' if n != 1 else ''}: {_delta(cell.delta_m)}"]
    for verdict, word in (
        (VERDICT_BETTER, "better than single-task on"),
        (VERDICT_WORSE, "worse on"),
    ):
        if by[verdict]:
            listed = ", ".join(f"{_label(v.task)} ({_gain(v.task, v.test)})" for v in by[verdict])
            parts.append(f"{word} {listed}")
    if by[NO_DIFFERENCE]:
        listed = ", ".join(
            f"{_label(v.task)} ({_gain(v.task, v.test)}{_before_holm(v.test)}; "
            f"detects ≥ {_size(v.detectable, v.task)})"
            for v in by[NO_DIFFERENCE]
        )
        parts.append(f"no detectable difference on {listed}")
    if by[UNTESTED]:
        why = {v.test.no_test for v in by[UNTESTED]}
        listed = ", ".join(_label(v.task) for v in by[UNTESTED])
        parts.append(f"not testable on {listed} ({'; '.join(sorted(why))})")
    return "; ".join(parts) + "."


def answer_mtl(findings: Findings) -> str:
    """The first question, answered over every (cell, task) comparison of the report."""
    verdicts: list[Verdict] = [v for g in findings.groups for c in g.cells for v in c.verdicts]
    if not verdicts:
        return (
            "When does multi-task beat single-task? No multi-task row has single-task rows "
            "of the same settings and seeds to compare with yet."
        )
    count = {
        k: sum(v.verdict == k for v in verdicts)
        for k in (VERDICT_BETTER, VERDICT_WORSE, NO_DIFFERENCE)
    }
    untested = len(verdicts) - sum(count.values())
    better: dict[str, list[str]] = {}
    for g in findings.groups:
        for c in g.cells:
            for v in c.verdicts:
                if v.verdict == VERDICT_BETTER:
                    tasks = better.setdefault(setting(g.backbone, g.pretrain), [])
                    tasks += [_label(v.task)] if _label(v.task) not in tasks else []
    where = [f"{s}: {', '.join(tasks)}" for s, tasks in better.items()]
    text = (
        f"When does multi-task beat single-task? In {count[VERDICT_BETTER]} of {len(verdicts)} "
        f"(cell, task) comparisons it is significantly better"
        + (f" ({'; '.join(where)})" if where else "")
        + f", in {count[VERDICT_WORSE]} significantly worse, and in "
        f"{count[NO_DIFFERENCE]} the seeds detect no difference"
    )
    if untested:
        text += f"; {untested} cannot be tested (one seed, or no spread)"
    return text + f" (paired t-tests, Holm over {findings.tests} tests, α = {findings.alpha:g})."


def answer_pretraining(findings: Findings) -> str | None:
    """The second question, where the sweep has multi-task cells with and without
    pretraining; None where it has no pretrained multi-task cell at all."""
    if not findings.interactions and not findings.unmatched:
        return None
    if not findings.interactions:
        return (
            "Does pretraining change that? No pretrained multi-task cell has the same cell "
            "without pretraining to compare with."
        )
    deltas = [i.delta for i in findings.interactions if i.delta is not None]
    resolved = [d for d in deltas if d.verdict in (VERDICT_BETTER, VERDICT_WORSE)]
    text = (
        f"Does pretraining change that? For {len(resolved)} of {len(deltas)} multi-task "
        "cells, pretraining changes Δm significantly"
    )
    if len(resolved) < len(deltas):
        text += f"; for {len(deltas) - len(resolved)} the seeds cannot resolve it (see below)"
    return text + "."


def interaction_line(inter: Interaction) -> str:
    """Pretraining's effect on one cell's Δm, said plainly, resolved or not."""
    name = _model(inter.pretrained)
    stage = inter.pretrained.pretrain
    d = inter.delta
    if d is None:
        return f"{name}: no Δm on a seed shared with and without {stage} pretraining."
    t = d.test
    head = (
        f"{name}: Δm {t.mtl_mean:+.{DELTA_DECIMALS}f} % pretrained on {stage} vs "
        f"{t.stl_mean:+.{DELTA_DECIMALS}f} % without, a difference of "
        f"{t.diff_mean:+.{DELTA_DECIMALS}f} %"
    )
    if d.verdict == UNTESTED:
        return f"{head}; the seeds cannot resolve it: no test ({t.no_test})."
    ci = interval_text(t.ci_low, t.ci_high, DELTA_DECIMALS)
    head += f" {ci}, p (Holm) {p_text(t.p_adjusted)}"
    if d.verdict == NO_DIFFERENCE:
        return (
            f"{head}. The {t.n} seeds cannot resolve it: the interval spans zero, and a "
            f"change below {d.detectable:.{DELTA_DECIMALS}f} % would go unseen "
            f"({100 * POWER:g}% power)."
        )
    how = "raises" if d.verdict == VERDICT_BETTER else "lowers"
    return f"{head}: pretraining {how} the multi-task gain."


def _reading(c: Contrast) -> str:
    if c.verdict == UNTESTED:
        return f"no test ({c.test.no_test})"
    if c.verdict == NO_DIFFERENCE:
        size = (
            f"{c.detectable:.{DELTA_DECIMALS}f} %"
            if c.what == DELTA_M
            else _size(c.detectable, c.what)
        )
        return f"unresolved (detects ≥ {size})"
    return "pretraining raises it" if c.verdict == VERDICT_BETTER else "pretraining lowers it"


def _scale(what: str) -> float:
    """Stored units to display units: Δm is already %, accuracies become points."""
    return 1.0 if what == DELTA_M else shown(1.0, PRIMARY_METRIC[what])


def _signed(x: float, what: str) -> str:
    if what == DELTA_M:
        return f"{x:+.{DELTA_DECIMALS}f}"
    return gain_text(x, PRIMARY_METRIC[what])


def interaction_rows(findings: Findings) -> list[tuple[list[str], int]]:
    """The interaction table (INTERACTION_HEADERS): one line per cell and contrast, with
    the direction (+1/-1, 0 when not significant) for the format's marker."""
    out = []
    for inter in findings.interactions:
        for c in inter.contrasts:
            t, w = c.test, c.what
            d = DELTA_DECIMALS if w == DELTA_M else gain_decimals(PRIMARY_METRIC[w])
            line = [
                _model(inter.pretrained),
                "Δm (%)" if w == DELTA_M else f"{_label(w)} gain ({_unit(w)})",
                _signed(t.mtl_mean, w),
                _signed(t.stl_mean, w),
                _signed(t.diff_mean, w),
                interval_text(t.ci_low * _scale(w), t.ci_high * _scale(w), d),
                p_text(t.p_adjusted) if t.tested else "",
                _reading(c),
            ]
            out.append((line, t.direction))
    return out


def lines(findings: Findings) -> list[str]:
    """The findings section's sentences: the two answers, then a line per group's cell
    (prefixed by its setting), then a line per interaction, then unmatched cells."""
    out = [answer_mtl(findings)]
    second = answer_pretraining(findings)
    if second:
        out.append(second)
    for g in findings.groups:
        out += [f"{setting(g.backbone, g.pretrain)}: {cell_line(c)}" for c in g.cells]
    out += [interaction_line(i) for i in findings.interactions]
    out += [
        f"{_model(r)} pretrained on {r.pretrain}: no cell without pretraining matches "
        "it (same backbone, tasks, weights and settings), so pretraining's effect is not tested."
        for r in findings.unmatched
    ]
    return out


# --- JSON -------------------------------------------------------------------------------


def _test_json(test: Paired, what: str) -> dict[str, Any]:
    scale = _scale(what)
    return {
        "n": test.n,
        "seeds": list(test.seeds),
        "diff_mean": num(test.diff_mean * scale),
        "ci_low": num(test.ci_low * scale),
        "ci_high": num(test.ci_high * scale),
        "p_value": None if math.isnan(test.p_value) else test.p_value,
        "p_adjusted": None if math.isnan(test.p_adjusted) else test.p_adjusted,
        "significant": test.significant,
        "no_test": test.no_test,
    }


def _cell_json(setting_text: str, cell: CellFinding) -> dict[str, Any]:
    dm = cell.delta_m
    delta = None
    if dm is not None:
        delta = {"mean": num(dm.mean), "ci_low": num(dm.low), "ci_high": num(dm.high), "n": dm.n}
    return {
        "kind": "multi_vs_single",
        "backbone": cell.row.backbone,
        "pretrain": cell.row.pretrain,
        "model": cell.row.name,
        "weights": cell.row.weights_text,
        "delta_m": delta,
        "tasks": [
            {
                "task": v.task,
                "verdict": v.verdict,
                "unit": _unit(v.task),
                "min_detectable_gain": num(v.detectable * _scale(v.task)),
                **_test_json(v.test, v.task),
            }
            for v in cell.verdicts
        ],
        "text": f"{setting_text}: {cell_line(cell)}",
    }


def _interaction_json(inter: Interaction) -> dict[str, Any]:
    return {
        "kind": "pretraining_interaction",
        "backbone": inter.pretrained.backbone,
        "pretrain": inter.pretrained.pretrain,
        "model": inter.pretrained.name,
        "weights": inter.pretrained.weights_text,
        "contrasts": [
            {
                "what": c.what,
                "verdict": c.verdict,
                "unit": "%" if c.what == DELTA_M else _unit(c.what),
                "with_pretraining": num(c.test.mtl_mean * _scale(c.what)),
                "without": num(c.test.stl_mean * _scale(c.what)),
                "min_detectable": num(c.detectable * _scale(c.what)),
                **_test_json(c.test, c.what),
            }
            for c in inter.contrasts
        ],
        "text": interaction_line(inter),
    }


def findings_json(findings: Findings) -> list[dict[str, Any]]:
    """The findings as JSON records, numbers in display units (points, years, %): one per
    multi-task cell (kind multi_vs_single), then one per interaction."""
    out = [_cell_json(setting(g.backbone, g.pretrain), c) for g in findings.groups for c in g.cells]
    return out + [_interaction_json(i) for i in findings.interactions]


# --- the section ------------------------------------------------------------------------


def _interaction_table(findings: Findings) -> TextTable:
    rows = [
        [Cell(text, sign=direction if i == 4 else 0) for i, text in enumerate(line)]
        for line, direction in interaction_rows(findings)
    ]
    ns = sorted({c.test.n for i in findings.interactions for c in i.contrasts})
    seeds = f"n = {ns[0]} seeds" if len(ns) == 1 else "n per cell"
    return TextTable(
        title="Does pretraining change the multi-task gain?",
        headers=INTERACTION_HEADERS,
        rows=rows,
        caption=(
            f"With pretraining − without, seed by seed, for each multi-task cell trained both "
            f"ways ({seeds}); each gain against its own single-task rows. Reading: whether "
            "the seeds resolve a change, and if not, the smallest change they would detect."
        ),
        align=["left", "left"] + ["right"] * 5 + ["left"],
        level=3,
        float_title="Pretraining interaction",
        label="findings-interaction",
    )


def findings_section(report: Report) -> Section:
    """The report's findings as the section that opens every format (`findings`)."""
    found = report.findings
    blocks = [[_interaction_table(found)]] if found.interactions else []
    return Section(
        key="findings",
        blocks=blocks,
        data=findings_json(found),
        title=TITLE,
        text=lines(found),
        listed=True,
    )
