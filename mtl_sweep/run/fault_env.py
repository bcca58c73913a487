"""Fault settings read from the environment, once, at the driver's boundary.

- `MTL_SWEEP_STORE_DEADLINE_S` (seconds, default 600, at least 10): a trial attempt gives
  up on a tracking store that stays unreachable this long, MLflow's own HTTP retries
  included; the driver gives the sweep up (exit 3) once the store has been unreachable
  for the deadline times the attempts a trial has (`failure.retries` + 1).
- `MTL_SWEEP_DEBUG_KILL_IN_SAVE` (a round index; tests only): every trial SIGKILLs its
  own process half-way through writing that round's checkpoint, once (an attempt that
  resumed from a checkpoint goes on), like `debug.fail_epoch` raises.

Trials get both through their `Execution`, so every node of a cluster uses the driver's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mtl_core.errors import UserError

DEADLINE_VAR = "MTL_SWEEP_STORE_DEADLINE_S"
KILL_IN_SAVE_VAR = "MTL_SWEEP_DEBUG_KILL_IN_SAVE"
DEFAULT_DEADLINE_S = 600.0  # a store restart or a database failover fits in it
MIN_DEADLINE_S = 10.0  # room for a few HTTP calls of deadline/4 each (store_retry.py)


@dataclass(frozen=True)
class FaultSettings:
    """How long trials wait for the tracking store, and the kill-in-save test hook."""

    store_deadline_s: float = DEFAULT_DEADLINE_S
    kill_in_save: int | None = None

    @classmethod
    def from_env(cls) -> FaultSettings:
        """Read the variables above; a bad value is a UserError (exit 2) naming it."""
        deadline = _number(DEADLINE_VAR, float, DEFAULT_DEADLINE_S)
        if deadline < MIN_DEADLINE_S:
            raise UserError(f"${DEADLINE_VAR}={deadline:g}: at least {MIN_DEADLINE_S:g} seconds")
        kill = _number(KILL_IN_SAVE_VAR, int, None)
        if kill is not None and kill < 0:
            raise UserError(f"${KILL_IN_SAVE_VAR}={kill}: a round index, 0 or more")
        return cls(deadline, kill)


def _number(var: str, kind: type, default: float | None):
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise UserError(f"${var}={raw!r} is not {what}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UserError(f"${var}={raw!r} is not a finite number")
    return value
