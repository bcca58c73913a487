"""Check the tracking store before any work: one clear line within seconds, never a hang.

MLflow's own client retries an unreachable server for minutes and surfaces a corrupt or
locked sqlite file as a traceback; every command asks here first instead.
"""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from mtl_core.errors import InfraError

TIMEOUT_S = 5.0  # per probe; a healthy local store answers in milliseconds


def check_store(uri: str, timeout: float = TIMEOUT_S, thorough: bool = True) -> None:
    """Raise InfraError naming the store when it cannot be used.

    sqlite: a missing file is fine (MLflow creates it); a file that is not a database, is
    corrupt (`thorough`: sqlite's quick_check, which reads the whole file), or stays
    locked for `timeout` is not. http(s): `GET /health` must answer. Other schemes
    (postgresql, mysql, ...) are left to MLflow.
    """
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri[len("sqlite:///") :]), timeout, thorough)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri.rstrip("/"), timeout)


def _check_sqlite(path: Path, timeout: float, thorough: bool) -> None:
    if not path.exists():
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout) as con:
            con.execute("select count(*) from sqlite_master").fetchone()
            ok = con.execute("pragma quick_check").fetchone() if thorough else ("ok",)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise InfraError(
                f"tracking store {path} is locked by another process (waited {timeout:.0f}s)"
            ) from None
        raise InfraError(f"tracking store {path} cannot be read: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise InfraError(f"tracking store {path} is not a usable sqlite database: {exc}") from None
    if ok is None or ok[0] != "ok":
        raise InfraError(f"tracking store {path} is corrupt (sqlite quick_check: {ok})")


def _check_server(uri: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as resp:
            if resp.status != 200:
                raise InfraError(f"tracking server {uri} answered {resp.status} on /health")
    except urllib.error.HTTPError as exc:
        raise InfraError(f"tracking server {uri} answered {exc.code} on /health") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InfraError(f"tracking server {uri} is unreachable: {reason}") from None
