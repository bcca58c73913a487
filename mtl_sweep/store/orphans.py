"""Resume checkpoints left by another store: found before any trial starts, said once.

A checkpoint names the MLflow run it continues (mtl_core/resume.py). When the store no
longer has that run (`mlflow.db` deleted and made afresh at the same path, a run deleted
in the UI), the checkpoint is discarded and its trial starts afresh; resuming it would
fail on every later run. Trials check the same themselves (trainables/trainable.py), for
a run deleted while the sweep runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mtl_core.resume import discard, orphaned


def discard_orphans(client: Any, folders: Mapping[str, Path], experiment_id: str) -> list[str]:
    """Discard the checkpoints (trial key -> folder) whose runs this store does not have,
    with one warning line; returns their keys."""
    keys = [k for k, folder in folders.items() if orphaned(client, folder, experiment_id)]
    for key in keys:
        discard(folders[key])
    if keys:
        click.echo(
            f"warning: discarded {len(keys)} resume checkpoint(s) whose MLflow run is not in "
            f"this store ({', '.join(keys)}); those trials start afresh",
            err=True,
        )
    return keys
