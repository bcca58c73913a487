"""Contract lookups in an MLflow store, shared by the driver and the trainables.

Each function takes an `MlflowClient`, so this module imports no mlflow itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import mtl_core.contract as C

if TYPE_CHECKING:
    from mlflow.entities import Run

PAGE = 1000  # search_runs page size


def iter_runs(client: Any, experiment_ids: list[str], filter_string: str = "") -> Iterator[Run]:
    """Every run matching the filter, following search_runs' page tokens."""
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def finished_runs(
    client: Any, key: str, kind: str, experiment_ids: list[str] | None = None
) -> list[Run]:
    """FINISHED runs of `kind` with this key, newest first; every experiment by default
    (pretraining jobs are shared across sweeps)."""
    filt = (
        f"attributes.status = 'FINISHED' and tags.`{C.KEY}` = '{key}' "
        f"and tags.`{C.KIND}` = '{kind}'"
    )
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    return sorted(iter_runs(client, experiment_ids, filt), key=lambda r: -r.info.start_time)
