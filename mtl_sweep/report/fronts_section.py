"""The trade-off fronts (report/fronts.py) as a document section: a verdict table per
drawn front, one table of the fronts that could not be drawn and why, the `fronts` JSON
list, CSV records, and a `--plot` panel per drawn front.

Numbers are in display units, as in the main section: accuracies in percent, Age MAE in
years; hypervolumes are areas on the normalised axes (unitless).
"""

from __future__ import annotations

import math
from typing import Any

from mtl_core.backbones import display_name
from mtl_core.tasks import PRIMARY_METRIC, tasks_tag
from mtl_sweep.report.cells import (
    MISSING,
    decimals,
    gain_text,
    gain_unit,
    num,
    p_text,
    shown,
)
from mtl_sweep.report.model.base import Interval
from mtl_sweep.report.model.document import Cell, FrontPanel, Section, Separator, TextTable
from mtl_sweep.report.model.fronts import DOMINATED, FIXED, FRONT, Front, FrontVerdict, Point
from mtl_sweep.report.model.report import Report

SINGLE_TASK = "single-task"
HV_DECIMALS = 4
CSV_FIRST = ("table", "block", "model", "backbone", "pretrain", "tasks", "weighting", "weights")


def fronts_section(report: Report) -> Section | None:
    """The section (`fronts`), or None for a report without a multi-task set to trace."""
    if not report.fronts:
        return None
    drawn = [f for f in report.fronts if f.drawn]
    blocks = [[_verdict_table(f, report, f"front-{i}")] for i, f in enumerate(drawn, 1)]
    undrawn = [f for f in report.fronts if not f.drawn]
    if undrawn:
        blocks.append([_undrawn_table(undrawn)])
    return Section(
        key="fronts",
        blocks=blocks,
        data=[_front_json(f) for f in report.fronts],
        records=[r for f in drawn for r in _records(f)],
        first=CSV_FIRST,
    )


def front_panels(report: Report) -> list[FrontPanel]:
    """A `--plot` panel per drawn front."""
    return [FrontPanel(front_title(f), f, report.alpha) for f in report.fronts if f.drawn]


def front_title(front: Front) -> str:
    """e.g. `Age × Gender front (ResNet-18, no pretraining, age+gender trials)`."""
    pretrain = "no pretraining" if front.pretrain == "none" else f"pretrained on {front.pretrain}"
    pair = " × ".join(t.capitalize() for t in front.pair)
    scope = f"{display_name(front.backbone)}, {pretrain}, {tasks_tag(front.tasks)} trials"
    return f"{pair} front ({scope})"


# --- the verdict table -----------------------------------------------------------------------


def _verdict_table(front: Front, report: Report, label: str) -> TextTable:
    i, j = front.pair
    mi, mj = PRIMARY_METRIC[i], PRIMARY_METRIC[j]
    ci = f"{100 * (1 - report.alpha):g}% CI"
    heads = [
        "method",
        "weights",
        f"{mi.label} [{ci}]",
        f"{mj.label} [{ci}]",
        "verdict",
        "against",
        f"Δ {mi.label}",
        f"p {i} (Holm)",
        f"Δ {mj.label}",
        f"p {j} (Holm)",
        "hypervolume",
    ]
    rows: list[list[Cell] | Separator] = []
    for point, on in zip(front.points, front.on_front, strict=True):
        verdict = FRONT if on else DOMINATED
        rows.append(_line(FIXED, point.name, point, front, verdict, bold=on))
    for v in front.strategies:
        rows.append(_strategy_line(v, front))
    for task, point in front.singles.items():
        rows.append(_single_line(task, point, front))
    text = {"method", "weights", "verdict", "against"}
    return TextTable(
        title=front_title(front),
        headers=heads,
        rows=rows,
        caption=_caption(front, report),
        align=["left" if h in text else "right" for h in heads],
        notes=list(front.notes),
        float_title=front_title(front),
        label=label,
    )


def _axis_text(stat: Interval, task: str) -> str:
    """`4.52 [4.31, 4.73]` in display units; the mean alone with one seed; — with none."""
    if stat.n == 0:
        return MISSING
    metric = PRIMARY_METRIC[task]
    d = decimals(metric)
    text = f"{shown(stat.mean, metric):.{d}f}"
    if not math.isnan(stat.low):
        low, high = shown(stat.low, metric), shown(stat.high, metric)
        text += f" [{low:.{d}f}, {high:.{d}f}]"
    return text


def _line(
    method: str, weights: str, point: Point, front: Front, verdict: str, bold: bool = False
) -> list[Cell]:
    return [
        Cell(method),
        Cell(weights),
        Cell(_axis_text(point.axes[0], front.pair[0])),
        Cell(_axis_text(point.axes[1], front.pair[1])),
        Cell(verdict, bold),
        *[Cell("")] * 6,
    ]


def _strategy_line(v: FrontVerdict, front: Front) -> list[Cell]:
    line = _line(v.point.name, "", v.point, front, v.verdict, bold=v.verdict != DOMINATED)
    line[5] = Cell(v.versus.name if v.versus else "")
    for k, task in enumerate(front.pair):
        test = v.tests.get(task)
        if test is not None:
            line[6 + 2 * k] = Cell(gain_text(test.diff_mean, PRIMARY_METRIC[task]))
            p = p_text(test.p_adjusted) if test.tested else f"no test ({test.no_test})"
            line[7 + 2 * k] = Cell(p)
    hv = front.hypervolume.get(v.point.name)
    line[10] = Cell("" if hv is None else f"{hv:.{HV_DECIMALS}f}")
    return line


def _single_line(task: str, point: Point, front: Front) -> list[Cell]:
    k = front.pair.index(task)
    line = _line(SINGLE_TASK, task, point, front, "reference")
    line[3 - k] = Cell("")  # only its own task's axis is measured
    return line


def _caption(front: Front, report: Report) -> str:
    units = ", ".join(
        f"{PRIMARY_METRIC[t].label.split(' (')[0]} in {gain_unit(PRIMARY_METRIC[t])}"
        for t in front.pair
    )
    seeds = f"{len(front.seeds)} seed(s) every weighting finished ({_seeds(front)})"
    out = (
        f"Each fixed weighting (weights over {tasks_tag(front.tasks)}) is its mean test "
        f"metric over the {seeds}, "
        f"with a {100 * (1 - report.alpha):g}% Student-t interval per task; the front is the "
        "weightings no other one dominates (moocore). An adaptive strategy is dominated when a "
        "fixed weighting is at least as good on both tasks and better on one, beyond when it "
        "dominates a front point and nothing dominates it, else on the front. Against: the "
        "weighting its tests compare with (the best dominating one, or the front point it "
        "dominates); Δ: mean paired per-seed difference, + favouring the dominating side "
        f"({units}); p: two-sided paired t-test, Holm-adjusted over every verdict test of the "
        "fronts."
    )
    hv = front.hypervolume.get(FIXED)
    if hv is not None:
        out += (
            " Hypervolume: the area a method's points dominate beyond the single-task point, "
            f"on metrics normalised to the trivial predictor (1 − MAE/MAE_trivial; (acc − "
            f"acc_trivial)/(1 − acc_trivial)); the fixed-weight front's is {hv:.{HV_DECIMALS}f}."
        )
    return out


def _seeds(front: Front) -> str:
    return ", ".join(map(str, front.seeds))


def _undrawn_table(fronts: list[Front]) -> TextTable:
    heads = ["backbone", "pretraining", "trained tasks", "pair", "strategies", "why no front"]
    variant = any(f.variant for f in fronts)
    if variant:
        heads.insert(3, "variant")
    rows: list[list[Cell] | Separator] = []
    for f in fronts:
        line = [display_name(f.backbone), f.pretrain, tasks_tag(f.tasks), " × ".join(f.pair)]
        line += [", ".join(f.unjudged) or MISSING, f.notes[0] if f.notes else ""]
        if variant:
            line.insert(3, f.variant)
        rows.append([Cell(text) for text in line])
    return TextTable(
        title="Trade-off fronts not drawn",
        headers=heads,
        rows=rows,
        caption=(
            "A front needs at least 3 fixed weightings of the same settings measured on shared "
            "seeds; `grid.weights: {ratios: [...]}` or `{simplex: N}` traces one. Strategies: "
            "the adaptive weightings that go unjudged without it."
        ),
        label="fronts-undrawn",
    )


# --- JSON and CSV ----------------------------------------------------------------------------


def _scaled(value: float, task: str) -> float | None:
    return num(shown(value, PRIMARY_METRIC[task]))


def _point_json(point: Point, pair: tuple[str, str]) -> dict[str, Any]:
    return {
        "means": {t: _scaled(a.mean, t) for t, a in zip(pair, point.axes, strict=True)},
        "ci": {
            t: [_scaled(a.low, t), _scaled(a.high, t)]
            for t, a in zip(pair, point.axes, strict=True)
        },
        "n": {t: a.n for t, a in zip(pair, point.axes, strict=True)},
    }


def _front_json(front: Front) -> dict[str, Any]:
    """One `fronts` entry: display units; weights over the set's tasks."""
    pair = front.pair
    return {
        "backbone": front.backbone,
        "pretrain": front.pretrain,
        "set": list(front.tasks),
        "variant": front.variant,
        "tasks": list(pair),
        "metrics": {t: PRIMARY_METRIC[t].name for t in pair},
        "seeds": list(front.seeds),
        "drawn": front.drawn,
        "points": [
            {"weights": list(p.weights or ()), **_point_json(p, pair), "on_front": on}
            for p, on in zip(
                front.points, front.on_front or [False] * len(front.points), strict=True
            )
        ],
        "front": [list(p.weights or ()) for p in front.front],
        "singles": {
            t: {
                "mean": _scaled(p.axes[k].mean, t),
                "ci": [_scaled(p.axes[k].low, t), _scaled(p.axes[k].high, t)],
                "n": p.axes[k].n,
            }
            for t, p in front.singles.items()
            for k in [pair.index(t)]
        },
        "strategies": [_strategy_json(v, pair) for v in front.strategies],
        "unjudged": list(front.unjudged),
        "hypervolume": {k: num(v) for k, v in front.hypervolume.items()} or None,
        "notes": list(front.notes),
    }


def _strategy_json(v: FrontVerdict, pair: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": v.point.name,
        **_point_json(v.point, pair),
        "verdict": v.verdict,
        "dominated_by": list(v.dominated_by) if v.dominated_by else None,
        "dominates": list(v.dominates) if v.dominates else None,
        "differences": {t: _scaled(x.diff_mean, t) for t, x in v.tests.items()},
        "p_value": {t: None if math.isnan(x.p_value) else x.p_value for t, x in v.tests.items()},
        "p_adjusted": {
            t: None if math.isnan(x.p_adjusted) else x.p_adjusted for t, x in v.tests.items()
        },
        "significant": {t: x.significant for t, x in v.tests.items()},
    }


def _records(front: Front) -> list[dict[str, Any]]:
    """One CSV record per point of a drawn front: fixed weightings, strategies, singles."""
    base = {
        "table": front_title(front),
        "block": "front",
        "backbone": front.backbone,
        "pretrain": front.pretrain,
        "tasks": tasks_tag(front.tasks),
        "pair": "+".join(front.pair),
    }
    out = []
    points: list[tuple[str, str, Point, str]] = [
        ("fixed", p.name, p, FRONT if on else DOMINATED)
        for p, on in zip(front.points, front.on_front, strict=True)
    ]
    points += [(v.point.name, "", v.point, v.verdict) for v in front.strategies]
    points += [(SINGLE_TASK, t, p, "reference") for t, p in front.singles.items()]
    verdicts = {v.point.name: v for v in front.strategies}
    for weighting, weights, point, verdict in points:
        rec: dict[str, Any] = base | {
            "model": weighting if weighting != "fixed" else f"fixed {weights}",
            "weighting": weighting,
            "weights": weights,
        }
        for t, axis in zip(front.pair, point.axes, strict=True):
            own = weighting != SINGLE_TASK or weights == t
            rec[f"front {t} mean"] = _scaled(axis.mean, t) if own else None
            rec[f"front {t} ci_low"] = _scaled(axis.low, t) if own else None
            rec[f"front {t} ci_high"] = _scaled(axis.high, t) if own else None
        rec["front n"] = point.axes[0].n
        rec["verdict"] = verdict
        v = verdicts.get(weighting) if weighting not in ("fixed", SINGLE_TASK) else None
        rec["against"] = v.versus.name if v and v.versus else ""
        for t in front.pair:
            test = v.tests.get(t) if v else None
            rec[f"verdict {t} diff"] = _scaled(test.diff_mean, t) if test else None
            rec[f"verdict {t} p_adjusted"] = (
                None if not test or math.isnan(test.p_adjusted) else test.p_adjusted
            )
        hv = front.hypervolume.get(FIXED if weighting == "fixed" else weighting)
        rec["hypervolume"] = (
            num(hv) if hv is not None and (weighting != "fixed" or verdict == FRONT) else None
        )
        out.append(rec)
    return out
