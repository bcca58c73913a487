"""The report's task-grouping section: a report's rows (and the runs' affinities) in,
one `Grouping` per comparable set of rows out. The selection rules live in `groupings`.

A *scope* is the multi-task rows of one table that can be compared with each other: the
same backbone, pretraining and weighting (equal fixed weights, or one weight vector), and
configs that agree. Its tasks are the tasks its rows train; every one of them has a
single-task row (else the rows have no Δm and are left out, with a note).

Seeds as in the rest of the report: a score's mean comes from the seed means, its spread is
the sample std of the same score computed seed by seed, over the seeds every network in it
shares with the single-task rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

import mtl_sweep.report.groupings as G
from mtl_core import contract as C
from mtl_core.tasks import PRIMARY_METRIC, TASKS
from mtl_sweep.report.compare import configs_agree, task_gain
from mtl_sweep.report.model.base import (
    FINISHED,
    MULTI,
    SINGLE,
    AffinityChoice,
    Grouping,
    Row,
    Selection,
    Served,
    Stat,
    Table,
)
from mtl_sweep.report.model.report import Report
from mtl_sweep.report.tables import ROW_KEYS, resolve_outcomes

SeedValues = dict[int, float]
RowKey = tuple[object, ...]  # Row.ident: the ROW_KEYS values of its runs


def attach_groupings(report: Report, runs: pd.DataFrame | None, force: bool | None) -> None:
    """Add the grouping analyses to `report.groupings`: for every scope with a subset other
    than single tasks and all of its tasks, or for every scope when `force` is True; none
    when `force` is False."""
    if force is False:
        return
    affinities = affinity_by_row(runs) if runs is not None else {}
    for table in report.tables:
        singles = [r for r in table.rows if r.block == SINGLE and r.label is None]
        for title, rows in scopes(table):
            tasks = tuple(t for t in TASKS if any(t in r.tasks for r in rows))
            intermediate = any(1 < len(r.tasks) < len(tasks) for r in rows)
            if (force or intermediate) and len(tasks) <= G.MAX_TASKS:
                report.groupings.append(analyse(title, tasks, rows, singles, affinities))


def scopes(table: Table) -> list[tuple[str, list[Row]]]:
    """The table's multi-task rows split into comparable sets (module docstring)."""
    out: list[tuple[str, list[Row]]] = []
    for row in (r for r in table.rows if r.block == MULTI and r.label is None):
        for _title, rows in out:
            first = rows[0]
            same = (first.backbone, first.pretrain, first.weighting, _weights_class(first))
            if same == (row.backbone, row.pretrain, row.weighting, _weights_class(row)) and (
                configs_agree(first.config, row.config)
            ):
                rows.append(row)
                break
        else:
            extra = [row.weighting] if row.weighting != "fixed" else []
            if _weights_class(row) != "equal":
                extra.append(f"weights {row.weights_text}")
            extra += [row.variant] if row.variant else []
            out.append((", ".join([table.title, *extra]), [row]))
    return out


def _weights_class(row: Row) -> str:
    ws = set(row.weights or ())
    return "equal" if row.weighting != "fixed" or len(ws) <= 1 else row.weights_text


def analyse(
    title: str,
    tasks: tuple[str, ...],
    rows: Sequence[Row],
    singles: Sequence[Row],
    affinities: Mapping[RowKey, dict[int, dict[G.Pair, float]]],
) -> Grouping:
    """One scope's selections from measured cells, from estimates and from affinity."""
    cells = _Cells(tasks, rows, singles)
    notes = [f"{r.name} has no Δm ({r.delta_note}), so it is left out." for r in cells.skipped]
    if cells.missing:
        missing = ", ".join(cells.missing)
        notes.append(f"No single-task row with the same settings for {missing}.")
        return Grouping(title, tasks, [], [], None, notes=notes)
    measured = [cells.selection(c) for c in G.best_selections(tasks, cells.candidates(False))]
    best = {s.k: s.score.mean for s in measured}
    estimated = [
        cells.selection(c)
        for c in G.best_selections(tasks, cells.candidates(True))
        if c.estimated and c.score > best.get(c.k, -math.inf) + 1e-9
    ]
    all_task = cells.all_task()
    if all_task is None:
        notes.append("vs all-task is blank: no all-task network was trained or can be estimated.")
    elif all_task.estimated:
        notes.append("The all-task network was not trained: vs all-task uses its pair estimate.")
    out = Grouping(title, tasks, measured, estimated, all_task, notes=notes)
    _attach_affinity(out, cells, affinities)
    _with_vs_all(out)
    return out


class _Cells:
    """Per-task gains of a scope's networks, as seed means and seed by seed."""

    def __init__(self, tasks: tuple[str, ...], rows: Sequence[Row], singles: Sequence[Row]):
        self.tasks = tasks
        self.keys = {t: C.TEST + PRIMARY_METRIC[t].name for t in tasks}
        self.singles: dict[str, Row] = {}
        self.missing = []
        for t in tasks:
            found = [
                s for s in singles if s.tasks == (t,) and configs_agree(s.config, rows[0].config)
            ]
            found = [
                s for s in found if (s.backbone, s.pretrain) == (rows[0].backbone, rows[0].pretrain)
            ]
            if len(found) == 1:
                self.singles[t] = found[0]
            else:
                self.missing.append(t)
        self.skipped = [r for r in rows if not r.gains or set(r.gains) != set(r.tasks)]
        self.rows = {r.tasks: r for r in rows if r not in self.skipped}
        self.mean = {s: {t: r.gains[t].mean for t in s} for s, r in self.rows.items()}
        self.by_subset = {n.tasks: n for n in self.candidates(True)}

    def candidates(self, estimate: bool) -> list[G.Network]:
        return G.measured_candidates(self.tasks, self.mean, estimate)

    def seed_gains(self, network: G.Network, task: str) -> SeedValues:
        """Task's gain (%) seed by seed: 0 for its single-task network, the mean over the
        pairs for an estimated one."""
        single = self.singles[task].values.get(self.keys[task], {})
        if network.basis == G.SINGLE:
            return dict.fromkeys(single, 0.0)
        if network.basis == G.ESTIMATED:
            parts = [
                self.seed_gains(self.by_subset[tuple(sorted((task, u), key=TASKS.index))], task)
                for u in network.tasks
                if u != task
            ]
            seeds = set.intersection(*(set(p) for p in parts))
            return {s: sum(p[s] for p in parts) / len(parts) for s in seeds}
        own = self.rows[network.tasks].values.get(self.keys[task], {})
        return {s: task_gain(task, own[s], single[s]) for s in own.keys() & single.keys()}

    def selection(self, choice: G.Choice) -> Selection:
        """A selection's score (mean and seed spread) and each task's served metric."""
        served, per_seed = [], []
        for t in self.tasks:
            net = choice.served[t]
            gain = net.scores[t]
            base = self.singles[t].cells[self.keys[t]].mean
            if net.basis == G.MEASURED:
                metric = self.rows[net.tasks].cells[self.keys[t]].mean
            else:  # single-task: its own value; estimated: what the estimated gain implies
                metric = base * (1 + PRIMARY_METRIC[t].sign * gain / 100)
            served.append(Served(t, net.tasks, net.basis, gain, metric))
            per_seed.append(self.seed_gains(net, t))
        seeds = sorted(set.intersection(*(set(p) for p in per_seed)))
        spread = Stat.of(sum(p[s] for p in per_seed) / len(per_seed) for s in seeds)
        score = Stat(choice.score, spread.std, spread.n)
        nets = choice.networks
        bases = tuple(n.basis for n in nets)
        return Selection(choice.k, tuple(n.tasks for n in nets), bases, score, None, tuple(served))

    def all_task(self) -> Selection | None:
        """One network on every task: the trained one, else its pair estimate."""
        net = self.by_subset.get(self.tasks)
        if net is None:
            return None
        return self.selection(G.Choice(1, (net,), dict.fromkeys(self.tasks, net), _mean(net)))


def _mean(network: G.Network) -> float:
    return sum(network.scores.values()) / len(network.scores)


def _with_vs_all(out: Grouping) -> None:
    """Each selection's score against the one all-task network (percentage points)."""
    if out.all_task is None:
        return
    ref = out.all_task.score.mean

    def rel(s: Selection) -> Selection:
        return replace(s, vs_all=s.score.mean - ref)

    out.measured = [rel(s) for s in out.measured]
    out.estimated = [rel(s) for s in out.estimated]
    out.by_affinity = [
        replace(c, measured=rel(c.measured) if c.measured else None) for c in out.by_affinity
    ]


def _attach_affinity(
    out: Grouping,
    cells: _Cells,
    affinities: Mapping[RowKey, dict[int, tuple[str, dict[G.Pair, float]]]],
) -> None:
    """TAG's selections from the all-task network's affinities, each with its measured
    score, and the rank correlation of affinity with the gain of the trained pairs."""
    full = cells.rows.get(out.tasks)
    scoped = affinities.get(full.ident, {}) if full is not None else {}
    per_seed = _one_scope(out, scoped)
    if not per_seed:
        if any(affinities.get(r.ident) for r in cells.rows.values()):
            out.notes.append(
                "Affinity groupings need the all-task network's affinities; it logged none."
            )
        return
    order = {t: i for i, t in enumerate(out.tasks)}
    pairs = sorted(
        {p for seed in per_seed.values() for p in seed if set(p) <= set(out.tasks)},
        key=lambda p: (order[p[0]], order[p[1]]),
    )
    out.affinity = {p: Stat.of(v[p] for v in per_seed.values() if p in v) for p in pairs}
    out.affinity_row = full.name if full is not None else ""
    means = {p: s.mean for p, s in out.affinity.items()}
    for choice in G.best_selections(out.tasks, G.affinity_candidates(out.tasks, means)):
        nets = [cells.by_subset.get(n.tasks) for n in choice.networks]
        measured = None
        if all(n is not None for n in nets):
            served = G.serve(out.tasks, nets)
            score = sum(served[t].scores[t] for t in out.tasks) / len(out.tasks)
            measured = cells.selection(G.Choice(choice.k, tuple(nets), served, score))
        subsets = tuple(n.tasks for n in choice.networks)
        out.by_affinity.append(AffinityChoice(choice.k, subsets, choice.score, measured))
    xs, ys = [], []
    for subset, row in cells.rows.items():
        if len(subset) == 2:
            for i, j in (subset, subset[::-1]):
                if (i, j) in means:
                    xs.append(means[(i, j)])
                    ys.append(row.gains[j].mean)
    out.spearman = G.spearman(xs, ys)


def _one_scope(
    out: Grouping, scoped: Mapping[int, tuple[str, dict[G.Pair, float]]]
) -> dict[int, dict[G.Pair, float]]:
    """The seeds measured with the scope most of them used (trunk on a tie): a proxy
    and TAG's own Z are not averaged together. Leaving any out is said in a note."""
    if not scoped:
        return {}
    counts = Counter(scope for scope, _ in scoped.values())
    out.affinity_params = max(counts, key=lambda s: (counts[s], s == "trunk"))
    if len(counts) > 1:
        left = len(scoped) - counts[out.affinity_params]
        out.notes.append(
            f"Affinities of {left} seed(s) measured with another train.affinity.params "
            f"were left out (this table uses {out.affinity_params})."
        )
    return {s: z for s, (scope, z) in scoped.items() if scope == out.affinity_params}


def affinity_by_row(
    runs: pd.DataFrame,
) -> dict[RowKey, dict[int, tuple[str, dict[G.Pair, float]]]]:
    """Each trial row's `affinity_mean/*` metrics, seed by seed, from its finished runs,
    with what their lookahead stepped (train.affinity.params)."""
    if runs.empty or "affinity" not in runs.columns or not runs["affinity"].map(bool).any():
        return {}
    trials = resolve_outcomes(runs)
    done = trials[(trials["outcome"] == FINISHED) & trials["affinity"].map(bool)]
    done = done[(done["kind"] == C.KIND_TRIAL) & (done["label"] == "")]
    out: dict[RowKey, dict[int, tuple[str, dict[G.Pair, float]]]] = {}
    for rec in done.to_dict("records"):
        key = tuple(rec[k] for k in ROW_KEYS)  # the row's `ident`
        scope = rec.get("affinity_params") or "trunk"
        out.setdefault(key, {})[int(rec["seed"])] = (scope, dict(rec["affinity"]))
    return out
