"""The Ray Tune entry point, importable without torch.

The driver only needs a reference to the function it schedules; importing
`trainables.trainable` there would cost a torch import (~4 s) for nothing. Workers
import the real trainable on their first trial, once per reused actor.
"""

from __future__ import annotations

from typing import Any


def tune_trainable(config: dict[str, Any], tracking_uri: str | None = None) -> None:
    """Ray Tune function trainable: see trainables.trainable.tune_trainable.

    `tracking_uri` (bound with tune.with_parameters, never written to Tune's params.json)
    replaces the request's copy, which has its secrets redacted.
    """
    from dataclasses import replace

    from mtl_core.trial import TUNE_CONFIG_KEY
    from trainables.trainable import tune_trainable as run

    if tracking_uri is not None:
        request = config[TUNE_CONFIG_KEY]
        execution = replace(request.execution, tracking_uri=tracking_uri)
        config = {**config, TUNE_CONFIG_KEY: replace(request, execution=execution)}
    run(config)
