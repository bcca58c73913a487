"""The Ray Tune entry point, importable without torch.

The driver only needs a reference to the function it schedules; importing
`trainables.trainable` there would cost a torch import (~4 s) for nothing. Workers
import the real trainable on their first trial, once per reused actor.
"""

from __future__ import annotations

from typing import Any


def tune_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: see trainables.trainable.tune_trainable."""
    from trainables.trainable import tune_trainable as run

    run(config)
