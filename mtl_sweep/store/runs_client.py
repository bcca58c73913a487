"""The client path of runs_read.py: `MlflowClient.search_runs`, for every store the SQL
path does not read (an `mlflow server` over HTTP, Databricks, an unknown revision)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from mtl_core import contract as C
from mtl_core.errors import InfraError
from mtl_sweep.store.run_data import RunData, Wanted, gc_paused

# Runs per search_runs page (MLflow allows 50,000). At 20,000 runs on 2 cores, pages of
# 1,000 / 3,000 / 10,000 took 13.1 / 11.5 / 9.7 s and 417 / 526 / 982 MiB.
CLIENT_PAGE = 3_000


class ClientReader:
    """`MlflowClient.search_runs` with large pages and the garbage collector paused."""

    def __init__(self, uri: str, client: Any = None) -> None:
        """Read through `client`; without one, check the store (InfraError, exit 3, within
        seconds) and open a client."""
        if client is None:
            from mlflow import MlflowClient

            from mtl_sweep.store.health import check_store

            check_store(uri)
            client = MlflowClient(tracking_uri=uri)
        self.uri, self.client = uri, client

    def experiments(self) -> dict[str, str]:
        """Active experiments: id -> name."""
        return {e.experiment_id: e.name for e in self.client.search_experiments()}

    def _search(
        self, experiment_ids: list[str], tag_filter: dict[str, tuple[str, ...]], extra: str = ""
    ) -> Iterator[Any]:
        # search_runs has no IN for tags: one search per value of the first filter with
        # more than one, the rest filtered here.
        clauses = [extra] if extra else []
        many: tuple[str, tuple[str, ...]] | None = None
        for key, values in tag_filter.items():
            if len(values) == 1:
                clauses.append(f"tags.`{key}` = {_quote(values[0])}")
            else:
                many = (key, values)
        searches = [clauses]
        if many is not None:
            searches = [[*clauses, f"tags.`{many[0]}` = {_quote(v)}"] for v in many[1]]
        for search in searches:
            token = None
            while True:
                page = self.client.search_runs(
                    experiment_ids, " and ".join(search), max_results=CLIENT_PAGE, page_token=token
                )
                for run in page:
                    tags = run.data.tags
                    if all(tags.get(k) in v for k, v in tag_filter.items()):
                        yield run
                token = page.token
                if not token:
                    break

    def runs(
        self, experiment_ids: list[str], tag_filter: dict[str, tuple[str, ...]], wanted: Wanted
    ) -> list[RunData]:
        """Active runs of the experiments that match `tag_filter`, newest first."""
        if not experiment_ids:
            return []
        shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        with gc_paused():
            found = [
                _run_data(run, wanted, shared) for run in self._search(experiment_ids, tag_filter)
            ]
        # One search per value of a filter: put the pages back in search_runs' order.
        found.sort(key=lambda r: r.run_id)
        found.sort(key=lambda r: -(r.start_time if r.start_time is not None else -math.inf))
        return found

    def finished_keys(self, experiment_ids: list[str], kind: str | None) -> set[str]:
        """Keys of FINISHED active runs in the experiments, of `kind` if given."""
        if not experiment_ids:
            return set()
        tag_filter = {C.KIND: (kind,)} if kind else {}
        extra = f"attributes.status = 'FINISHED' and tags.`{C.KEY}` != ''"
        with gc_paused():
            return {
                r.data.tags[C.KEY]
                for r in self._search(experiment_ids, tag_filter, extra)
                if r.data.tags.get(C.KEY)
            }

    def fingerprint(self) -> str | None:
        """None: a server store gives no cheap sign that nothing changed."""
        return None


def _quote(value: str) -> str:
    if "'" in value:
        raise InfraError(f"cannot search MLflow for a tag value with a quote: {value!r}")
    return f"'{value}'"


def _run_data(
    run: Any, wanted: Wanted, shared: dict[tuple[tuple[str, str], ...], dict[str, str]]
) -> RunData:
    """The run as RunData; runs with the same params share one dict in `shared`."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    if wanted.tags is not None:
        tags = {k: v for k, v in tags.items() if k in wanted.tags}
    if wanted.param_prefixes is not None:
        params = {k: v for k, v in params.items() if k.startswith(wanted.param_prefixes)}
    params = shared.setdefault(tuple(params.items()), params)
    if wanted.metric_prefixes is not None:
        metrics = {k: v for k, v in metrics.items() if k.startswith(wanted.metric_prefixes)}
    info = run.info
    return RunData(
        info.run_id,
        info.experiment_id,
        info.status,
        info.start_time,
        info.end_time,
        tags,
        params,
        metrics,
    )
