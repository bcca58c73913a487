"""A cell's search results, and the configuration its final runs retrain.

Select on validation, report on test: the winner is the sample with the best validation
objective among those that ran the full budget. A trial its scheduler stopped early can
never win, whatever it scored before it was stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mtl_core import contract as C
from mtl_core.runs import iter_runs
from mtl_sweep.search.space import Values


@dataclass(frozen=True)
class SearchResult:
    """One finished search run, as the driver or the report reads it."""

    cell: str
    index: int  # sample index
    key: str
    run_id: str
    values: Values
    objective: float | None  # the best round's validation objective (higher is better)
    steps: int  # optimizer steps it ran (a stopped run: up to its stop)
    stopped: bool  # stopped early by its scheduler

    @property
    def eligible(self) -> bool:
        """Ran the full budget and has a finite objective: it may win its cell."""
        return not self.stopped and self.objective is not None and math.isfinite(self.objective)


def winner(results: Iterable[SearchResult]) -> SearchResult | None:
    """The best eligible result (ties: the lowest sample index); None when none is."""
    eligible = [r for r in results if r.eligible]
    if not eligible:
        return None
    return max(eligible, key=lambda r: (r.objective, -r.index))


def result_of_run(run: Any) -> SearchResult | None:
    """A FINISHED search run as a result; None for a run that lacks the contract's tags."""
    tags, metrics = run.data.tags, run.data.metrics
    if C.CELL not in tags or C.KEY not in tags:
        return None
    stopped = tags.get(C.STOPPED_EARLY) == "true"
    best = metrics.get(C.SEARCH_BEST)
    return SearchResult(
        cell=tags[C.CELL],
        index=int(tags.get(C.SAMPLE, "0")),
        key=tags[C.KEY],
        run_id=run.info.run_id,
        values=json.loads(tags.get(C.SEARCH_VALUES, "{}")),
        objective=None if stopped or best is None else float(best),
        steps=int(metrics.get(C.SEARCH_STEPS, 0)),
        stopped=stopped,
    )


def finished_search_results(client: Any, experiment_id: str) -> dict[str, SearchResult]:
    """Key -> result of every FINISHED search run of the experiment (the newest per key)."""
    filt = f"attributes.status = 'FINISHED' and tags.`{C.KIND}` = '{C.KIND_SEARCH}'"
    out: dict[str, tuple[int, SearchResult]] = {}
    for run in iter_runs(client, [experiment_id], filt):
        if C.SUPERSEDED_BY in run.data.tags:
            continue
        result = result_of_run(run)
        if result is not None and run.info.start_time >= out.get(result.key, (-1, None))[0]:
            out[result.key] = (run.info.start_time, result)
    return {k: r for k, (_, r) in out.items()}
