"""Which tasks should share a network: Standley et al.'s selection, and TAG's.

Standley et al. (ICML 2020): train networks on task subsets, then choose at most k of them
so that every task is served by the best chosen network that trains it. A selection's score
is the mean over tasks of the served network's score on that task. Here a network's score
on task t is the signed relative change against t's single-task result, in percent (the
term of Δm, REFERENCES.md): 100 s_t (M_t − S_t) / S_t, so a single-task network scores 0 and
the score of a selection is its Δm against training every task alone.

A subset that was not trained is *estimated* by Standley's higher-order approximation: its
score on t is the mean of the pair results (t, u) over the other members u. Estimated
networks are flagged as such wherever they are chosen.

TAG (Fifty et al., NeurIPS 2021): the same selection on affinity scores, where a network's
score on t is the mean lookahead affinity Z(u→t) onto t from its other members.

The search is exhaustive: the best selection of at most k networks induces a partition of
the tasks (by serving network), so it is the best over set partitions into at most k blocks,
each block served by its best network among those that train it (Bell(6) = 203 partitions
for six tasks). Pure Python and pandas: nothing here reads MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from mtl_sweep.report.model.base import AFFINITY, ESTIMATED, MEASURED, SINGLE_BASIS, Pair, Subset

MAX_TASKS = 6  # exhaustive search up to this many tasks
# Re-exported: the selection rules and their callers name them G.MEASURED, G.Subset, ...
SINGLE = SINGLE_BASIS
_EPS = 1e-9  # scores closer than this tie


@dataclass(frozen=True, eq=False)  # compared and hashed by identity
class Network:
    """A candidate network: its tasks, its per-task scores and where they come from."""

    tasks: Subset
    scores: Mapping[str, float]  # task -> score (gain %, or affinity)
    basis: str  # MEASURED, ESTIMATED, SINGLE or AFFINITY


@dataclass(frozen=True)
class Choice:
    """The best selection of at most `k` networks."""

    k: int
    networks: tuple[Network, ...]
    served: Mapping[str, Network]  # task -> the chosen network that serves it best
    score: float  # mean over tasks of the served score

    @property
    def estimated(self) -> bool:
        """Whether an estimated network serves some task."""
        return any(n.basis == ESTIMATED for n in self.served.values())


def set_partitions(items: Sequence[str]) -> Iterator[list[list[str]]]:
    """Every partition of `items` into non-empty blocks (Bell(n) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]


def serve(tasks: Sequence[str], networks: Sequence[Network]) -> dict[str, Network]:
    """Each task's best network among `networks` that train it (Standley's rule)."""
    out = {}
    for t in tasks:
        having = [n for n in networks if t in n.tasks]
        if having:
            out[t] = max(having, key=lambda n: (n.scores[t], n.basis != ESTIMATED))
    return out


def best_selections(tasks: Sequence[str], candidates: Sequence[Network]) -> list[Choice]:
    """For k = 1 .. len(tasks), the best selection of at most k candidates serving every task.

    A k is left out when no selection of that size serves every task. Ties go to fewer
    networks, then to fewer estimated ones, then to the canonical order of the networks.
    """
    tasks = list(tasks)
    if len(tasks) > MAX_TASKS:
        raise ValueError(f"exhaustive search takes at most {MAX_TASKS} tasks, got {len(tasks)}")
    best: dict[int, tuple[tuple[object, ...], Choice]] = {}
    for blocks in set_partitions(tasks):
        chosen = []
        for block in blocks:
            having = [n for n in candidates if set(block) <= set(n.tasks)]
            if not having:
                break
            chosen.append(max(having, key=lambda n, b=block: _block_key(n, b)))
        else:
            networks = tuple(dict.fromkeys(chosen))  # one network may serve several blocks
            served = serve(tasks, networks)
            score = sum(served[t].scores[t] for t in tasks) / len(tasks)
            rank = (
                -round(score / _EPS),
                len(networks),
                sum(n.basis == ESTIMATED for n in served.values()),
                sorted(n.tasks for n in networks),
            )
            for k in range(len(networks), len(tasks) + 1):
                if k not in best or rank < best[k][0]:
                    best[k] = (rank, Choice(k, networks, served, score))
    return [best[k][1] for k in sorted(best)]


def _block_key(network: Network, block: Sequence[str]) -> tuple[float, bool, int]:
    """How well `network` serves `block`: total score, then measured first, then smaller."""
    total = sum(network.scores[t] for t in block)
    return (round(total / _EPS) * _EPS, network.basis != ESTIMATED, -len(network.tasks))


def pair_estimate(
    subset: Subset, pairs: Mapping[frozenset[str], Mapping[str, float]]
) -> dict[str, float] | None:
    """Standley's higher-order approximation of a subset's per-task scores from its pairs:
    score(S, t) = mean over u in S \\ {t} of score({t, u}, t). None when a pair is missing."""
    out = {}
    for t in subset:
        terms = []
        for u in subset:
            if u == t:
                continue
            pair = pairs.get(frozenset((t, u)))
            if pair is None or t not in pair:
                return None
            terms.append(pair[t])
        out[t] = sum(terms) / len(terms)
    return out


def measured_candidates(
    tasks: Sequence[str], measured: Mapping[Subset, Mapping[str, float]], estimate: bool
) -> list[Network]:
    """Candidates from per-subset scores: single-task networks (score 0), the measured
    multi-task ones and, with `estimate`, every other subset of three or more tasks that its
    pairs can estimate."""
    out = [Network((t,), {t: 0.0}, SINGLE) for t in tasks]
    out += [Network(s, dict(v), MEASURED) for s, v in measured.items() if len(s) > 1]
    if estimate:
        pairs = {frozenset(s): v for s, v in measured.items() if len(s) == 2}
        for size in range(3, len(tasks) + 1):
            for subset in combinations(tasks, size):
                if subset in measured:
                    continue
                scores = pair_estimate(subset, pairs)
                if scores is not None:
                    out.append(Network(subset, scores, ESTIMATED))
    return out


def affinity_candidates(tasks: Sequence[str], affinity: Mapping[Pair, float]) -> list[Network]:
    """TAG's candidates: every subset, scored on t by the mean affinity Z(u→t) onto t from
    its other members u (0 for a single-task network). Subsets missing a pair are left out."""
    out = []
    for size in range(1, len(tasks) + 1):
        for subset in combinations(tasks, size):
            scores = {}
            for t in subset:
                onto = [affinity.get((u, t)) for u in subset if u != t]
                if any(z is None for z in onto):
                    break
                scores[t] = sum(onto) / len(onto) if onto else 0.0
            else:
                out.append(Network(subset, scores, AFFINITY if size > 1 else SINGLE))
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, int] | None:
    """Spearman's rank correlation (scipy) with its two-sided p-value and n; None below
    three points or when either side is constant."""
    from scipy.stats import spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    result = spearmanr(xs, ys)
    rho, p = float(result.statistic), float(result.pvalue)
    return (rho, p, len(xs)) if math.isfinite(rho) else None
