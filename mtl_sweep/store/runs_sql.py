"""The SQL path of runs_read.py: read-only SQLAlchemy Core queries on MLflow's run tables.

For MLflow's SQL stores (sqlite, PostgreSQL, MySQL) at an alembic revision these queries
were checked against (KNOWN_REVISIONS); `SqlReader.open` answers None for any other store,
which is then read through the client.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mtl_core import contract as C
from mtl_core.errors import InfraError
from mtl_sweep.store.run_data import RunData, Wanted, gc_paused

if TYPE_CHECKING:
    import sqlalchemy as sa

# Alembic revisions of MLflow's schema whose run tables these queries were checked against
# (MLflow 3.17's head). A store at another revision is read through the client until its
# migrations have been read and the revision added here; test_runs_read pins the
# installed MLflow's head in this set.
KNOWN_REVISIONS = frozenset({"dc11669786a5"})
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
ACTIVE = "active"
LOCK_TIMEOUT_S = 5.0  # how long a read waits for a sqlite writer (as the health check does)
BATCH = 10_000  # rows fetched at once


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
        with self._connect() as conn, gc_paused():
            order = [row for batch in _batches(conn, head) for row in batch]
            strings: dict[str, str] = {}  # one object per distinct key or value
            tags: dict[str, dict[str, str]] = {r[0]: {} for r in order}
            metrics: dict[str, dict[str, float]] = {r[0]: {} for r in order}
            for batch in _batches(conn, tag_stmt):
                for run_id, key, value in batch:
                    tags[run_id][strings.setdefault(key, key)] = strings.setdefault(value, value)
            params = _shared_params(_batches(conn, param_stmt))
            for batch in _batches(conn, metric_stmt):
                for run_id, key, value, is_nan in batch:
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


def _shared_params(batches: Iterator[list[tuple[str, str, str]]]) -> dict[str, dict[str, str]]:
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
    for batch in batches:
        for run_id, key, value in batch:
            if run_id != current:
                if current is not None:
                    keep(current, items)
                current, items = run_id, []
            items.append((key, value))
    if current is not None:
        keep(current, items)
    return out


def _batches(conn: sa.Connection, stmt: Any) -> Iterator[list[tuple[Any, ...]]]:
    """The statement's rows in batches, as the driver's own tuples: SQLAlchemy's Row
    objects cost four times what the driver does (2 us a row against 0.5)."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args = tuple(params[k] for k in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        while batch := cursor.fetchmany(BATCH):
            yield batch
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
