"""Resolving the MLflow tracking URI the same way for every command (no mlflow import)."""

from __future__ import annotations

import os
from pathlib import Path

from mtl_core.errors import UserError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# MLflow's own tracking stores: its SQLAlchemy dialects (with an optional +driver), REST
# servers and Databricks.
STORE_SCHEMES = frozenset(
    {"sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc"}
)


def resolve_tracking_uri(cli_uri: str | None = None, spec_uri: str | None = None) -> str:
    """--tracking-uri, then the spec's value, then $MLFLOW_TRACKING_URI, then
    sqlite:///mlflow.db in the current directory. A relative sqlite path is made
    absolute, because Ray trials run in another working directory."""
    uri = cli_uri or spec_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    return absolute_uri(uri)


def absolute_uri(uri: str) -> str:
    """Make a sqlite:/// URI absolute; other URIs (http, postgresql, ...) pass through."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = uri[len(prefix) :]
        if path != ":memory:":
            return prefix + str(Path(path).expanduser().absolute())
    # A bare `databricks` (the default profile) is a URI MLflow takes without `://`.
    scheme = uri.partition("://")[0].partition("+")[0].lower() if "://" in uri else ""
    if uri in STORE_SCHEMES:
        return uri
    if scheme in ("", "file") and uri:
        raise UserError(
            f"tracking URI {uri!r} is a plain file store, which MLflow 3.13+ refuses; "
            "use sqlite:///PATH.db or http://HOST:PORT"
        )
    if uri and scheme not in STORE_SCHEMES and scheme not in _plugin_schemes():
        raise UserError(
            f"tracking URI {uri!r}: MLflow has no store for {scheme}://; use sqlite:///PATH.db, "
            "http(s)://HOST:PORT, or a database URL (postgresql://, mysql://, mssql://)"
        )
    return uri


def _plugin_schemes() -> set[str]:
    """Schemes that installed MLflow plugins add (entry points, read without mlflow)."""
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group="mlflow.tracking_store")}


def store_exists(uri: str) -> bool:
    """False for a sqlite store whose file is not there yet (so reading creates nothing)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).exists()
    return True
