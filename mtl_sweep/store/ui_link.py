"""Where to look in the MLflow UI: the experiment tag and the runs-view URL.

MLflow 3 opens an experiment on its GenAI "Overview" (traces) unless told otherwise:
- MLflow 3.17 picks the page from the sidebar's workflow toggle (GenAI by default, kept
  in the browser), which the URL's `workflowType=machine_learning` switches to "Model
  training"; its runs view is `#/experiments/<id>/runs`.
- Earlier 3.x releases pick it from the experiment tag `mlflow.experimentKind`
  (`custom_model_development` is "Model training"), and ask the user to choose when it
  is missing. We set the tag on every sweep's experiment for those.
So `mtl-sweep run` ends by printing the runs-view URL with the toggle set.
benchmarks/ui_screenshot.py checks this in a real headless browser.
"""

from __future__ import annotations

import shlex
import socket
from urllib.parse import urlsplit, urlunsplit

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Model training" kind
EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
UI_HOST = "127.0.0.1"  # where `mlflow ui` listens by default
UI_PORT = 5000


def runs_view_url(base: str, experiment_id: str) -> str:
    """The URL of an experiment's runs table in the MLflow UI served at `base`."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def hide_password(uri: str) -> str:
    """`uri` with its password, if any, shown as ***."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def free_port(preferred: int = UI_PORT, host: str = UI_HOST) -> int:
    """`preferred` if nothing listens on it at `host` now, else a port the OS says is free.

    Only a hint: another program may take the port before the user runs `mlflow ui`.
    """
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return preferred  # nothing could be bound here: the default, as mlflow would use


def ui_hint(uri: str, experiment_id: str, port: int = UI_PORT) -> list[str]:
    """Lines telling the user how to open the runs of `experiment_id` in the UI.

    A tracking server already serves the UI: only its URL. Any other store (sqlite, a
    database) gets the `mlflow ui` command that opens it on `port`, then the URL, then
    how to pick another port; a password in the URI is shown as ***.
    """
    if uri.startswith(("http://", "https://")):
        return [f"MLflow UI: {runs_view_url(uri, experiment_id)}"]
    if uri.startswith("databricks"):
        return [f"MLflow UI: the Databricks workspace, experiment {experiment_id}"]
    command = f"mlflow ui --backend-store-uri {shlex.quote(hide_password(uri))} --port {port}"
    base = f"http://{UI_HOST}:{port}"
    return [
        f"MLflow UI: {command}",
        f"  then open {runs_view_url(base, experiment_id)}",
        f"  (port {port} is free now; if it is taken by then, pass another --port)",
    ]
