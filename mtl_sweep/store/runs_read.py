"""Reading finished work out of MLflow fast: the report's runs and the finished keys.

Two readers give the same answers (tests/test_runs_read.py holds them together):

- `SqlReader` (runs_sql.py): read-only SQLAlchemy Core queries on the tables MLflow's own migrations
  define (`experiments`, `runs`, `tags`, `params`, `latest_metrics`), for SQL stores
  (sqlite, PostgreSQL, MySQL). It reads only the rows the caller needs, as plain tuples:
  MLflow's `search_runs` builds an ORM object and an entity for every param, tag and
  metric of every run, about 1 ms per run. It is used only when the store's alembic
  revision is one whose tables were checked against these queries (`KNOWN_REVISIONS`);
  any other store falls back to the client.
- `ClientReader` (runs_client.py): `MlflowClient.search_runs` with large pages and the
  garbage collector paused, for every other store (an `mlflow server` over HTTP,
  Databricks, an unknown revision).

Both see what `search_runs` sees by default: active runs in active experiments, newest
first (start time descending, then run id), latest metric values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from mtl_core import contract as C
from mtl_sweep.store.run_data import RunData, Wanted
from mtl_sweep.store.runs_client import ClientReader
from mtl_sweep.store.runs_sql import SqlReader

__all__ = [
    "ClientReader",
    "Reader",
    "RunData",
    "SqlReader",
    "Wanted",
    "finished_keys",
    "open_reader",
]


class Reader(Protocol):
    """What both readers answer."""

    uri: str

    def experiments(self) -> dict[str, str]:
        """Active experiments: id -> name."""
        ...

    def runs(
        self, experiment_ids: list[str], tag_filter: dict[str, tuple[str, ...]], wanted: Wanted
    ) -> list[RunData]:
        """Active runs of the experiments whose tags take one of the given values, newest
        first; `wanted` says which tags, params and metrics to fill in."""
        ...

    def finished_keys(self, experiment_ids: list[str], kind: str | None) -> set[str]:
        """Keys (the contract's key tag) of FINISHED runs, of `kind` if given."""
        ...

    def fingerprint(self) -> str | None:
        """A string that changes with every write to the store; None where there is none."""
        ...


def open_reader(uri: str) -> Reader:
    """The fast SQL reader where the store allows it, else the client reader."""
    return SqlReader.open(uri) or ClientReader(uri)


def finished_keys(reader: Reader, experiment: str, job_keys: Iterable[str]) -> set[str]:
    """Keys with a FINISHED run, as `run` skips them: trials and jobs of the experiment
    `experiment`, and the pretraining jobs `job_keys` in any experiment (sweeps share them)."""
    experiments = reader.experiments()
    own = [i for i, name in experiments.items() if name == experiment]
    done = reader.finished_keys(own, None)
    wanted = set(job_keys)
    if wanted - done:
        done |= reader.finished_keys(list(experiments), C.KIND_PRETRAIN) & wanted
    return done
