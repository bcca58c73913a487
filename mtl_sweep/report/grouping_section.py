"""The task-grouping analyses as a document section, and their affinity-matrix panels.

Each analysis gives up to three tables: the best selections on the measured cells (with
estimated networks where one would win), the affinity matrix, and TAG's selections. Cells
are plain text here; each writer escapes them. JSON and CSV keep metrics in stored units,
like `test/*`.
"""

from __future__ import annotations

import math
from typing import Any

import mtl_sweep.report.groupings as G
from mtl_core.tasks import PRIMARY_METRIC
from mtl_sweep.report.cells import decimals, num, shown
from mtl_sweep.report.model.base import AffinityChoice, Grouping, Selection, Stat
from mtl_sweep.report.model.document import AffinityPanel, Cell, Section, TextTable
from mtl_sweep.report.model.report import Report

SCORE_CONVENTION = (
    "Score (%) = mean over tasks of 100 s_t (M_t − S_t) / S_t, with M_t from the chosen network "
    "that serves task t best and S_t its single-task result: Δm against training every task "
    "alone (Standley et al. 2020, on at most k networks). vs all-task: the score minus that of "
    "one network on every task, in percentage points. 'estimated': a subset that was not "
    "trained, scored from its pairs by Standley's higher-order approximation (the mean of the "
    "pair results (t, u) over its other members u); ≈ marks a metric it implies."
)
AFFINITY_CONVENTION = (
    "Z(i→j) = 1 − L_j(after one optimizer step on task i's loss alone) / L_j(before), on the "
    "same batch, averaged over training (TAG, Fifty et al. 2021): positive means a step for i "
    "lowers j's loss. TAG's groups maximise the mean over tasks of the mean affinity onto "
    "each task from the other members of the group serving it."
)


def grouping_section(report: Report) -> Section:
    """Every analysis's tables (one block each), its JSON (`groupings`) and CSV records."""
    tables = [t for g in report.groupings for t in tables_of(g)]
    for i, table in enumerate(tables, 1):
        table.label = f"grouping-{i}"
    return Section(
        key="groupings",
        blocks=[[t] for t in tables],
        data=groupings_json(report),
        records=grouping_records(report),
    )


def affinity_panels(report: Report) -> list[AffinityPanel]:
    """A heatmap panel per analysis that has affinities."""
    return [AffinityPanel(g) for g in report.groupings if g.affinity]


def network_name(subset: G.Subset, estimated: bool = False) -> str:
    """`age+gender`, with `(estimated)` for a network that was not trained."""
    return "+".join(subset) + (" (estimated)" if estimated else "")


def stat_text(stat: Stat, fmt: str = "+.2f") -> str:
    """`+1.75 ± 0.20 (n=3)`; `+1.75 (n=1)`; `—` without a value."""
    if math.isnan(stat.mean):
        return "—"
    text = f"{stat.mean:{fmt}}"
    if stat.n > 1 and not math.isnan(stat.std):
        text += f" ± {stat.std:.2f}" if fmt == "+.2f" else f" ± {stat.std:.2g}"
    return f"{text} (n={stat.n})"


def _served_text(selection: Selection, task: str) -> str:
    s = next(x for x in selection.served if x.task == task)
    metric = PRIMARY_METRIC[task]
    mark = "≈" if s.basis == G.ESTIMATED else ""
    return f"{mark}{shown(s.metric, metric):.{decimals(metric)}f} ({network_name(s.network)})"


def _networks_text(sel: Selection) -> str:
    pairs = zip(sel.networks, sel.bases, strict=True)
    return ", ".join(network_name(n, b == G.ESTIMATED) for n, b in pairs)


def _selection_row(sel: Selection, basis: str, tasks: tuple[str, ...]) -> list[Cell]:
    nets = _networks_text(sel)
    vs = "" if sel.vs_all is None else f"{sel.vs_all:+.2f}"
    texts = [str(sel.k), nets, basis, stat_text(sel.score), vs]
    return [Cell(t) for t in texts + [_served_text(sel, t) for t in tasks]]


def tables_of(g: Grouping) -> list[TextTable]:
    """The analysis as display tables (see the module docstring)."""
    heads = ["k", "networks", "basis", "score (%)", "vs all-task (pp)"]
    heads += [f"{PRIMARY_METRIC[t].label} (served by)" for t in g.tasks]
    rows = [_selection_row(s, G.MEASURED, g.tasks) for s in g.measured]
    rows += [_selection_row(s, G.ESTIMATED, g.tasks) for s in g.estimated]
    notes = " ".join(g.notes)
    caption = f"{SCORE_CONVENTION} {notes}".strip()
    out = [TextTable(f"Task groupings: {g.title}", heads, rows, caption, align=_left(heads))]
    if not g.affinity:
        return out
    matrix: list[list[Cell]] = [
        [Cell(task), *(Cell(_affinity_cell(g, source=task, target=t)) for t in g.tasks)]
        for task in g.tasks
    ]
    rho = (
        "Spearman rank correlation of Z(i→j) with task j's measured gain in the trained pair "
        f"{{i, j}}: ρ = {g.spearman[0]:+.2f} (p = {g.spearman[1]:.2g}, n = {g.spearman[2]})."
        if g.spearman
        else "No rank correlation: fewer than three trained pairs with affinities."
    )
    heads = ["from \\ onto", *g.tasks]
    out.append(
        TextTable(
            f"Inter-task affinity Z(row → column): {g.title}",
            heads,
            list(matrix),
            f"Measured during training of {g.affinity_row} ({_scope_text(g)}); mean ± std "
            "over seeds. "
            f"{AFFINITY_CONVENTION} {rho}",
            align=_left(heads),
        )
    )
    heads = ["k", "networks (by affinity)", "affinity score", "measured score (%)"]
    heads.append("vs all-task (pp)")
    out.append(
        TextTable(
            f"Task groupings from affinity: {g.title}",
            heads,
            [_affinity_row(c) for c in g.by_affinity],
            "Measured score: the same networks scored on the trained cells as above "
            "(estimated where a network was not trained); blank where it cannot be scored.",
            align=_left(heads),
        )
    )
    return out


def _left(heads: list[str]) -> list[str]:
    # Text-like columns throughout (networks, scores with ±): all left-aligned.
    return ["left"] * len(heads)


def _affinity_cell(g: Grouping, source: str, target: str) -> str:
    if source == target:
        return ""
    stat = g.affinity.get((source, target))
    return "—" if stat is None else stat_text(stat, "+.3g")


def _scope_text(g: Grouping) -> str:
    if g.affinity_params == "last_shared":
        return "lookahead on the trunk's last weight tensor only: a proxy for TAG's Z"
    return "lookahead on the whole trunk"


def _affinity_row(c: AffinityChoice) -> list[Cell]:
    m = c.measured
    score = "" if m is None else stat_text(m.score) + (" (estimated)" if m.estimated else "")
    vs = "" if m is None or m.vs_all is None else f"{m.vs_all:+.2f}"
    bases = dict(zip(m.networks, m.bases, strict=True)) if m else {}
    nets = [
        network_name(n) + (" (not trained)" if bases.get(n) == G.ESTIMATED else "")
        for n in c.networks
    ]
    return [Cell(t) for t in (str(c.k), ", ".join(nets), f"{c.affinity:+.4g}", score, vs)]


# --- JSON and CSV --------------------------------------------------------------------------


def _stat(stat: Stat) -> dict[str, Any]:
    return {"mean": num(stat.mean), "std": num(stat.std), "n": stat.n}


def _selection_json(sel: Selection) -> dict[str, Any]:
    return {
        "k": sel.k,
        "networks": [
            {"tasks": list(n), "basis": b} for n, b in zip(sel.networks, sel.bases, strict=True)
        ],
        "estimated": sel.estimated,
        "score": _stat(sel.score),
        "vs_all_task": sel.vs_all,
        "served": {
            s.task: {
                "network": list(s.network),
                "basis": s.basis,
                "gain": round(s.gain, 9),
                "metric": round(s.metric, 9),
            }
            for s in sel.served
        },
    }


def groupings_json(report: Report) -> list[dict[str, Any]]:
    """The analyses as JSON-ready dicts (metrics in stored units, like `test/*`)."""
    return [
        {
            "title": g.title,
            "tasks": list(g.tasks),
            "measured": [_selection_json(s) for s in g.measured],
            "estimated": [_selection_json(s) for s in g.estimated],
            "all_task": _selection_json(g.all_task) if g.all_task else None,
            "affinity_row": g.affinity_row,
            "affinity_params": g.affinity_params,
            "affinity": [{"from": i, "onto": j, **_stat(s)} for (i, j), s in g.affinity.items()],
            "by_affinity": [
                {
                    "k": c.k,
                    "networks": [list(n) for n in c.networks],
                    "affinity": c.affinity,
                    "measured": _selection_json(c.measured) if c.measured else None,
                }
                for c in g.by_affinity
            ],
            "spearman": dict(zip(("rho", "p", "n"), g.spearman, strict=True))
            if g.spearman
            else None,
            "notes": g.notes,
        }
        for g in report.groupings
    ]


def grouping_records(report: Report) -> list[dict[str, Any]]:
    """Flat records for the CSV, after the table rows: `block` says which kind each is."""
    out: list[dict[str, Any]] = []
    for g in report.groupings:
        for basis, sels in ((G.MEASURED, g.measured), (G.ESTIMATED, g.estimated)):
            out += [_selection_record(g, s, f"grouping ({basis})") for s in sels]
        out += [
            {
                "table": g.title,
                "block": "affinity",
                "model": g.affinity_row,
                "from": i,
                "onto": j,
                "affinity": s.mean,
                "affinity std": s.std,
                "affinity n": s.n,
                "affinity params": g.affinity_params,
            }
            for (i, j), s in g.affinity.items()
        ]
        for c in g.by_affinity:
            rec = (
                _selection_record(g, c.measured, "grouping (affinity)")
                if c.measured
                else {"table": g.title, "block": "grouping (affinity)", "k": c.k}
            )
            rec["model"] = ", ".join(network_name(n) for n in c.networks)
            rec["affinity"] = c.affinity
            out.append(rec)
    return out


def _selection_record(g: Grouping, sel: Selection, block: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "table": g.title,
        "block": block,
        "model": _networks_text(sel),
        "k": sel.k,
        "score (%)": sel.score.mean,
        "score std": sel.score.std,
        "score n": sel.score.n,
        "vs all-task (pp)": sel.vs_all,
    }
    for s in sel.served:
        metric = PRIMARY_METRIC[s.task]
        rec[f"{metric.label} served"] = s.metric * (100 if metric.percent else 1)
        rec[f"{metric.label} served by"] = network_name(s.network, s.basis == G.ESTIMATED)
    return rec
