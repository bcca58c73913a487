"""Reading finished work out of MLflow fast: the report's runs and the finished keys.

Two readers give the same answers (tests/test_runs_read.py holds them together):

- `SqlReader`: read-only SQLAlchemy Core queries on the tables MLflow's own migrations
  define (`experiments`, `runs`, `tags`, `params`, `latest_metrics`), for SQL stores
  (sqlite, PostgreSQL, MySQL). It reads only the rows the caller needs, as plain tuples:
  MLflow's `search_runs` builds an ORM object and an entity for every param, tag and
  metric of every run, about 1 ms per run. It is used only when the store's alembic
  revision is one whose tables were checked against these queries (KNOWN_REVISIONS);
  any other store falls back to the client.
- `ClientReader`: `MlflowClient.search_runs` with large pages and the garbage collector
  paused, for every other store (an `mlflow server` over HTTP, Databricks, an unknown
  revision).

Both see what `search_runs` sees by default: active runs in active experiments, newest
first (start time descending, then run id), latest metric values.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from mtl_core import contract as C
from mtl_core.errors import InfraError

if TYPE_CHECKING:
    import sqlalchemy as sa

# Alembic revisions of MLflow's schema whose run tables these queries were checked against
# (MLflow 3.17's head). A store at another revision is read through the client until its
# migrations have been read and the revision added here; test_runs_read pins the
# installed MLflow's head in this set.
KNOWN_REVISIONS = frozenset({"dc11669786a5"})
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# Runs per search_runs page on the client path (MLflow allows 50,000). At 20,000 runs on
# 2 cores, pages of 1,000 / 3,000 / 10,000 took 13.1 / 11.5 / 9.7 s and 417 / 526 / 982 MiB.
CLIENT_PAGE = 3_000
ACTIVE = "active"
LOCK_TIMEOUT_S = 5.0  # how long a read waits for a sqlite writer (as the health check does)
BATCH = 10_000  # rows fetched at once on the SQL path


@dataclass(frozen=True)
class RunData:
    """One run as the report reads it: what `mlflow.entities.Run` holds, flattened."""

    run_id: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Wanted:
    """Which tags, params and metrics a caller reads (None: all of them)."""

    tags: tuple[str, ...] | None = None
    param_prefixes: tuple[str, ...] | None = None
    metric_prefixes: tuple[str, ...] | None = None


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


# --- SQL -------------------------------------------------------------------------------------


class SqlReader:
    """Read-only Core queries on MLflow's run tables (see module docstring)."""

    def __init__(self, uri: str, engine: sa.Engine) -> None:
        self.uri, self.engine = uri, engine

    @classmethod
    def open(cls, uri: str) -> SqlReader | None:
        """A reader for a SQL store at a known revision; None for any other store.

        Raises InfraError when a sqlite file cannot be read at all.
        """
        scheme = uri.partition("://")[0].partition("+")[0].lower()
        if scheme not in SQL_SCHEMES:
            return None
        import sqlalchemy as sa

        if scheme == "sqlite":
            # Read only, and wait for a writer as long as the health check does.
            path = uri[len("sqlite:///") :]
            if not Path(path).exists():
                return None  # MLflow's to create (or refuse) through the client
            engine = sa.create_engine(
                "sqlite://", poolclass=sa.pool.NullPool, creator=lambda: _sqlite_read_only(path)
            )
        else:
            engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                revision = conn.execute(sa.text("select version_num from alembic_version")).all()
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return None  # not migrated yet: the client migrates it
            raise InfraError(f"tracking store {uri} cannot be read: {exc.orig}") from None
        except sa.exc.DatabaseError as exc:  # the same words as the health check's
            raise InfraError(
                f"tracking store {uri} is not a usable {scheme} database: {exc.orig}"
            ) from None
        if [r[0] for r in revision] and all(r[0] in KNOWN_REVISIONS for r in revision):
            return cls(uri, engine)
        engine.dispose()
        return None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A connection; a store that stays locked or breaks while read is InfraError (one
        line, exit 3), as the health check reports it."""
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise InfraError(f"tracking store {self.uri} cannot be read: {exc.orig}") from None
        except self.engine.dialect.loaded_dbapi.Error as exc:  # from the driver's own cursor
            raise InfraError(f"tracking store {self.uri} cannot be read: {exc}") from None

    def experiments(self) -> dict[str, str]:
        """Active experiments: id -> name."""
        import sqlalchemy as sa

        e = _tables()["experiments"]
        stmt = sa.select(e.c.experiment_id, e.c.name).where(e.c.lifecycle_stage == ACTIVE)
        with self._connect() as conn:
            return {str(i): name for i, name in conn.execute(stmt)}

    def _selected(self, experiment_ids: list[str], tag_filter: dict[str, tuple[str, ...]]):
        """The runs subquery: active, in the experiments, with every tag filter met."""
        import sqlalchemy as sa

        t = _tables()
        runs = t["runs"]
        stmt = sa.select(runs.c.run_uuid).where(
            runs.c.experiment_id.in_([int(i) for i in experiment_ids]),
            runs.c.lifecycle_stage == ACTIVE,
        )
        for i, (key, values) in enumerate(tag_filter.items()):
            tag = t["tags"].alias(f"f{i}")
            stmt = stmt.join(
                tag,
                sa.and_(
                    tag.c.run_uuid == runs.c.run_uuid,
                    tag.c.key == key,
                    tag.c.value.in_(values),
                ),
            )
        return stmt

    def runs(
        self, experiment_ids: list[str], tag_filter: dict[str, tuple[str, ...]], wanted: Wanted
    ) -> list[RunData]:
        """Active runs of the experiments that match `tag_filter`, newest first."""
        import sqlalchemy as sa

        if not experiment_ids:
            return []
        t = _tables()
        runs = t["runs"]
        selected = self._selected(experiment_ids, tag_filter).subquery()
        head = (
            sa.select(
                runs.c.run_uuid,
                runs.c.experiment_id,
                runs.c.status,
                runs.c.start_time,
                runs.c.end_time,
            )
            .join(selected, selected.c.run_uuid == runs.c.run_uuid)
            .order_by(runs.c.start_time.desc(), runs.c.run_uuid)
        )

        def rows(name: str, *columns: str, keys: sa.ColumnElement[bool] | None = None):
            table = t[name]
            stmt = sa.select(*(table.c[c] for c in ("run_uuid", *columns))).join(
                selected, selected.c.run_uuid == table.c.run_uuid
            )
            return stmt if keys is None else stmt.where(keys(table))

        tag_stmt = rows("tags", "key", "value", keys=_in("key", wanted.tags))
        param_stmt = rows("params", "key", "value", keys=_prefixed("key", wanted.param_prefixes))
        metric_stmt = rows(
            "latest_metrics",
            "key",
            "value",
            "is_nan",
            keys=_prefixed("key", wanted.metric_prefixes),
        )
        with self._connect() as conn, _gc_paused():
            order = list(_rows(conn, head))
            strings: dict[str, str] = {}  # one object per distinct key or value
            tags: dict[str, dict[str, str]] = {r[0]: {} for r in order}
            metrics: dict[str, dict[str, float]] = {r[0]: {} for r in order}
            for run_id, key, value in _rows(conn, tag_stmt):
                tags[run_id][strings.setdefault(key, key)] = strings.setdefault(value, value)
            params = _shared_params(_rows(conn, param_stmt))
            for run_id, key, value, is_nan in _rows(conn, metric_stmt):
                # MLflow stores a NaN as 0 with is_nan set, and hands it back as NaN.
                metrics[run_id][strings.setdefault(key, key)] = math.nan if is_nan else value
        return [
            RunData(i, str(e), s, start, end, tags[i], params.get(i, {}), metrics[i])
            for i, e, s, start, end in order
        ]

    def finished_keys(self, experiment_ids: list[str], kind: str | None) -> set[str]:
        """Keys of FINISHED active runs in the experiments, of `kind` if given."""
        import sqlalchemy as sa

        if not experiment_ids:
            return set()
        t = _tables()
        runs, key = t["runs"], t["tags"].alias("k")
        stmt = self._selected(experiment_ids, {C.KIND: (kind,)} if kind else {})
        stmt = (
            stmt.with_only_columns(key.c.value)
            .join(key, sa.and_(key.c.run_uuid == runs.c.run_uuid, key.c.key == C.KEY))
            .where(runs.c.status == "FINISHED", key.c.value != "")
            .distinct()
        )
        with self._connect() as conn:
            return set(conn.execute(stmt).scalars())

    def fingerprint(self) -> str | None:
        """A string that changes with every write to a sqlite store (None for others): its
        file change counter (bumped by every commit), size and mtime, and the WAL's."""
        if not self.uri.startswith("sqlite:///"):
            return None
        path = Path(self.uri[len("sqlite:///") :])
        parts = []
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            try:
                st = file.stat()
            except FileNotFoundError:
                parts.append("-")
                continue
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        with path.open("rb") as f:
            header = f.read(28)  # bytes 24-27: the file change counter
        parts.append(header[24:28].hex())
        return "|".join(parts)


def _sqlite_read_only(path: str) -> Any:
    """A read-only connection to the sqlite file at `path` (any characters in it), that
    waits LOCK_TIMEOUT_S for a writer."""
    import sqlite3

    return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=LOCK_TIMEOUT_S)


def _shared_params(rows: Iterator[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    """run id -> its params, one dict shared by the runs that logged the same params.

    The runs of a sweep log few distinct param sets (the seeds of a cell log the same
    config), and one dict per run would hold millions of equal strings. A store returns a
    run's params together (the join reads them by run id); a run whose params come in
    several pieces still gets them all.
    """
    shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    out: dict[str, dict[str, str]] = {}

    def keep(run_id: str, items: list[tuple[str, str]]) -> None:
        found = tuple(items)
        params = shared.get(found)
        if params is None:
            params = shared[found] = dict(found)
        if run_id in out:  # a run's rows in pieces: not shared any more
            params = {**out[run_id], **params}
        out[run_id] = params

    current, items = None, []
    for run_id, key, value in rows:
        if run_id != current:
            if current is not None:
                keep(current, items)
            current, items = run_id, []
        items.append((key, value))
    if current is not None:
        keep(current, items)
    return out


def _rows(conn: sa.Connection, stmt: Any) -> Iterator[tuple[Any, ...]]:
    """The statement's rows as the driver's own tuples, fetched in batches: SQLAlchemy's
    Row objects cost four times what the driver does (2 us a row against 0.5)."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args = tuple(params[k] for k in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        while batch := cursor.fetchmany(BATCH):
            yield from batch
    finally:
        cursor.close()


def _in(column: str, values: tuple[str, ...] | None):
    if values is None:
        return None
    return lambda table: table.c[column].in_(values)


def _prefixed(column: str, prefixes: tuple[str, ...] | None):
    if prefixes is None:
        return None
    import sqlalchemy as sa

    # startswith escapes LIKE's wildcards, so `_` in a prefix matches itself only; no
    # prefix at all matches nothing.
    return lambda table: sa.or_(
        sa.false(), *(table.c[column].startswith(p, autoescape=True) for p in prefixes)
    )


_TABLES: dict[str, Any] = {}


def _tables() -> dict[str, Any]:
    """Lightweight Core descriptions of the columns read (MLflow's ORM models cost ~1 s to
    import and are not needed to read)."""
    if not _TABLES:
        import sqlalchemy as sa

        def table(name: str, *columns: str) -> Any:
            return sa.table(name, *(sa.column(c) for c in columns))

        _TABLES.update(
            experiments=table("experiments", "experiment_id", "name", "lifecycle_stage"),
            runs=table(
                "runs",
                "run_uuid",
                "experiment_id",
                "status",
                "start_time",
                "end_time",
                "lifecycle_stage",
            ),
            tags=table("tags", "run_uuid", "key", "value"),
            params=table("params", "run_uuid", "key", "value"),
            latest_metrics=table("latest_metrics", "run_uuid", "key", "value", "is_nan"),
        )
    return _TABLES


# --- client ----------------------------------------------------------------------------------


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
        with _gc_paused():
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
        with _gc_paused():
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


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Reading builds millions of short-lived objects (tuples per row; ORM objects on the
    # client path) that trigger repeated full collections; none of them form cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the finished-key lookup of `plan` and `run` ---------------------------------------------


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
