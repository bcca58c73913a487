"""Resolving the MLflow tracking URI the same way for every command (no mlflow import)."""

from __future__ import annotations

import os
from pathlib import Path

from mtl_core.errors import UserError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


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
    if "://" not in uri and uri:
        raise UserError(
            f"tracking URI {uri!r} has no scheme; MLflow 3.13+ refuses a plain file store, "
            "use sqlite:///PATH.db or http://HOST:PORT"
        )
    return uri


def store_exists(uri: str) -> bool:
    """False for a sqlite store whose file is not there yet (so reading creates nothing)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).exists()
    return True
