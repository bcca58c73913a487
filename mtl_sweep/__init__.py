"""mtl-sweep: multi-task vs single-task sweeps on Ray Tune, tracked in MLflow.

The orchestrator package. It imports no torch or ray at import time: the heavy
imports live in the modules that need them (runner, trainables).
"""

__version__ = "0.1.0"
