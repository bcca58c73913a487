"""The fast read path (plain SQL, and the local copy of its last read) against the client.

Each check reads the same real store twice: through the fast path (`SqlReader`, with the
copy under the cache folder in use) and through `MlflowClient.search_runs`; the report's
JSON and the finished keys must be identical, also after the changes a store goes through:
a --rerun superseding a run, runs marked KILLED or FAILED later, runs deleted in the UI.
An `mlflow server` store is read through the client only, and must give the same report
as its backing sqlite file read with SQL.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import pytest
import sqlalchemy as sa

from mtl_core import contract as C
from mtl_sweep.report import query, render_report
from mtl_sweep.store import runs_client, runs_sql, snapshot
from mtl_sweep.store.runs_read import ClientReader, SqlReader, finished_keys, open_reader
from tests.test_report import Study

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own: the fast path keeps its copies there."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MTL_SWEEP_CACHE", str(folder))
    return folder


def client_report(uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The report's JSON with every run read by MlflowClient.search_runs (pages of 1,000)."""
    with monkeypatch.context() as m:
        m.setattr(query, "open_reader", ClientReader)
        m.setattr(runs_client, "CLIENT_PAGE", 1000)
        return render_report(uri, fmt="json")


def fast_report(uri: str) -> str:
    """The report's JSON through the fast path (SQL, and its copy when nothing changed)."""
    return render_report(uri, fmt="json")


def log_study(uri: str) -> tuple[Study, dict[str, str]]:
    """A small sweep: single- and multi-task trials, three seeds, a pretraining job, a
    reference model and a FAILED run; returns the study and some run ids by role."""
    study = Study(uri, sweep="s")
    ids = {}
    ids["job"] = study.trial(("age", "gender"), {}, kind=C.KIND_PRETRAIN, pretrain="imdb")
    for seed in range(3):
        for tasks, results in (
            (("age",), {"age": 6.0 + seed / 10, "test/age_eps": 0.3}),
            (("gender",), {"gender": 0.90 + seed / 100}),
            (("age", "gender"), {"age": 5.8 + seed / 10, "gender": 0.91}),
        ):
            ids[f"{'+'.join(tasks)}/{seed}"] = study.trial(tasks, results, seed=seed)
    ids["ref"] = study.trial(("age",), {"age": 5.0}, backbone="dex", label="DEX")
    ids["failed"] = study.trial(("gender",), {}, seed=3, status="FAILED")
    return study, ids


def changes(study: Study, ids: dict[str, str]) -> Iterator[str]:
    """Change the store the ways a store changes, one at a time; yields what changed."""
    client = study.client
    # --rerun: a new FINISHED run of the same key, the old one tagged as superseded.
    old = client.get_run(ids["age/0"])
    new = study.trial(("age",), {"age": 7.5, "test/age_eps": 0.35}, seed=0)
    assert client.get_run(new).data.tags[C.KEY] == old.data.tags[C.KEY]
    client.set_tag(old.info.run_id, C.SUPERSEDED_BY, new)
    yield "rerun"
    client.set_terminated(ids["age+gender/1"], "KILLED")
    yield "killed"
    client.set_terminated(ids["gender/2"], "FAILED")
    yield "failed"
    client.delete_run(ids["age+gender/2"])  # what the UI's delete does
    yield "deleted"


def test_the_installed_mlflow_schema_is_a_known_revision():
    """An MLflow upgrade with a new migration fails here: read it, then add its revision."""
    import mlflow
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    migrations = Path(mlflow.__file__).parent / "store" / "db_migrations"
    cfg.set_main_option("script_location", str(migrations))
    assert set(ScriptDirectory.from_config(cfg).get_heads()) <= runs_sql.KNOWN_REVISIONS


def test_fast_report_equals_search_runs_on_sqlite_after_each_change(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study, ids = log_study(uri)
    assert isinstance(open_reader(uri), SqlReader)
    before = fast_report(uri)
    assert before == client_report(uri, monkeypatch)
    assert fast_report(uri) == before  # from the copy: nothing changed
    for change in changes(study, ids):
        now = fast_report(uri)
        assert now != before, f"the report did not see the change: {change}"
        assert now == client_report(uri, monkeypatch), change
        before = now


def test_an_unchanged_store_is_not_read_again(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_study(uri)
    first = fast_report(uri)

    def no_read(*args, **kwargs):
        raise AssertionError("the store was read although it did not change")

    monkeypatch.setattr(SqlReader, "runs", no_read)
    assert fast_report(uri) == first


def test_a_copy_from_other_code_or_a_broken_file_is_not_used(tmp_path, monkeypatch, cache):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_study(uri)
    first = fast_report(uri)
    (copy,) = (cache / snapshot.FOLDER).glob("*.pickle")
    copy.write_bytes(b"not a pickle")
    assert fast_report(uri) == first
    reads = []
    monkeypatch.setattr(snapshot, "FORMAT", snapshot.FORMAT + 1)
    real = SqlReader.runs
    monkeypatch.setattr(SqlReader, "runs", lambda *a, **k: reads.append(1) or real(*a, **k))
    assert fast_report(uri) == first
    assert reads  # a copy in another format was read again from the store


def test_finished_keys_equal_search_runs_after_each_change(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study, ids = log_study(uri)
    other = Study(uri, sweep="other", experiment="elsewhere")
    shared_job = other.trial(("age",), {}, kind=C.KIND_PRETRAIN, pretrain="imdb")
    job_key = other.client.get_run(shared_job).data.tags[C.KEY]
    sql, client = SqlReader.open(uri), ClientReader(uri)
    assert sql is not None
    for change in chain(["logged"], changes(study, ids)):
        fast = finished_keys(sql, "s", [job_key, "nokey"])
        assert fast == finished_keys(client, "s", [job_key, "nokey"]), change
        assert job_key in fast and "nokey" not in fast
    killed = study.client.get_run(ids["age+gender/1"]).data.tags[C.KEY]
    assert killed not in finished_keys(sql, "s", [])


def test_stores_that_have_no_sql_path_use_the_client(tmp_path):
    assert SqlReader.open("http://127.0.0.1:1") is None
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert SqlReader.open(missing) is None
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # a store at a revision these queries were not checked on
        conn.execute(sa.text("create table alembic_version (version_num varchar(32))"))
        conn.execute(sa.text("insert into alembic_version values ('0123456789ab')"))
    assert SqlReader.open(f"sqlite:///{tmp_path / 'old.db'}") is None


def test_a_sqlite_file_that_is_no_database_is_a_one_line_error(tmp_path):
    from mtl_core.errors import InfraError

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InfraError, match="not a usable sqlite database"):
        SqlReader.open(f"sqlite:///{db}")


def test_a_store_locked_while_read_is_a_one_line_error(tmp_path, monkeypatch):
    import sqlite3

    from mtl_core.errors import InfraError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_study(uri)
    monkeypatch.setattr(runs_sql, "LOCK_TIMEOUT_S", 0.2)
    reader = SqlReader.open(uri)
    assert reader is not None
    writer = sqlite3.connect(tmp_path / "mlflow.db")
    writer.execute("begin exclusive")  # another process writing, and not letting go
    try:
        with pytest.raises(InfraError, match="cannot be read: database is locked"):
            finished_keys(reader, "s", [])
    finally:
        writer.rollback()
        writer.close()


# --- a real mlflow server ------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `mlflow server` on loopback: (its http URI, its backing sqlite URI)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "server.db"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", f"sqlite:///{db}"),
            *("--default-artifact-root", (tmp_path / "artifacts").as_uri()),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start (exit {proc.poll()})")
            time.sleep(0.5)
        yield uri, f"sqlite:///{db}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_server_store_reads_through_the_client_and_agrees_with_sql(server, monkeypatch):
    http, backing = server
    study, ids = log_study(http)
    assert isinstance(open_reader(http), ClientReader)
    reports: list[Callable[[], str]] = [
        lambda: fast_report(http),  # the client: a server has no SQL path
        lambda: client_report(http, monkeypatch),
        lambda: fast_report(backing),  # the server's own file, read with SQL
    ]
    before = None
    for change in chain(["logged"], changes(study, ids)):
        first, *others = [_without_uri(report()) for report in reports]
        assert all(other == first for other in others), change
        assert first != before, change
        before = first


def _without_uri(report: str) -> dict:
    """The report's JSON without the one field that names the store it was read from."""
    out = json.loads(report)
    del out["tracking_uri"]
    return out


# --- the bench's bulk-built stores -------------------------------------------------------


def test_bulk_inserted_runs_are_the_rows_mlflow_writes(tmp_path, monkeypatch):
    """bench_store.insert_bulk writes what create_run + log_batch + set_terminated write,
    row for row (run ids aside), so the report reads the bench's runs as a sweep's."""
    import bench_store

    n = 30
    stores = {}
    for how in ("client", "bulk"):
        uri = f"sqlite:///{tmp_path / how}.db"
        client, exp, sweep_id = bench_store.create_store(uri, n)
        runs = bench_store.sweep_runs(n, sweep_id)
        if how == "client":
            assert bench_store.log_with_client(client, exp, runs) == n
        else:
            assert bench_store.insert_bulk(uri, exp, runs, batch=7) == n
        bench_store.check_store(uri, n)
        stores[how] = uri
    dumps = {how: _dump(uri) for how, uri in stores.items()}
    assert dumps["client"] == dumps["bulk"]
    by_client = _without_uri(client_report(stores["client"], monkeypatch))
    assert by_client == _without_uri(fast_report(stores["bulk"]))


def _dump(uri: str) -> dict[str, list[tuple]]:
    """The run tables' rows, with run ids replaced by the runs' order of start."""
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("select * from runs order by start_time")).mappings().all()
        order = {r["run_uuid"]: str(i) for i, r in enumerate(runs)}

        def rows(sql: str) -> list[tuple]:
            out = []
            for row in conn.execute(sa.text(sql)).mappings():
                values = {k: order.get(v, v) if isinstance(v, str) else v for k, v in row.items()}
                values.pop("artifact_uri", None)  # holds the run id
                out.append(tuple(sorted(values.items())))
            return sorted(out, key=repr)

        dump = {t: rows(f"select * from {t}") for t in ("tags", "params", "latest_metrics")}
        dump["metrics"] = rows("select * from metrics")
        dump["runs"] = rows("select * from runs")
    engine.dispose()
    return dump


def test_the_bench_refuses_a_size_its_grid_cannot_build(capsys):
    import bench_store

    with pytest.raises(SystemExit) as exc:
        bench_store.check_runs(10**7)
    assert exc.value.code == 2
    assert "builds 5 to 200004 runs" in capsys.readouterr().err


def test_the_bench_checks_a_reused_store(tmp_path, capsys):
    import bench_store

    uri = f"sqlite:///{tmp_path / 'b.db'}"
    _, exp, sweep_id = bench_store.create_store(uri, 12)
    bench_store.insert_bulk(uri, exp, bench_store.sweep_runs(10, sweep_id))
    with pytest.raises(SystemExit):
        bench_store.check_store(uri, 12)
    assert "holds 10 sweep runs" in capsys.readouterr().err
