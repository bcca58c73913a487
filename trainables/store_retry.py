"""Retry a trial's tracking calls through transient store faults, within a deadline.

A trial runs for hours; its tracking server restarts, or its sqlite file is locked by
another writer for longer than sqlite's busy timeout. This layer retries what is
transient (a refused or reset connection, HTTP 429/503, "database is locked") with
jittered exponential backoff, and raises a permanent error (a bad parameter, a missing
run) at once.

The deadline is wall-clock and holds for the whole call, MLflow's own HTTP retries
included: `bound_http` turns MLflow's retries off in the trial's process and caps each
HTTP request at deadline/4 (at most 30 s), and a retry starts only when its worst case
(connect plus read, 2 x that timeout) still ends before the deadline.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_before_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

# Up to ten minutes in all by default ($MTL_SWEEP_STORE_DEADLINE_S): a store restart, or a
# failover of its database, fits in it; a store that stays down fails the trial, which
# keeps its checkpoint and resumes later.
GIVE_UP_S = 600.0
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 60.0
HTTP_TIMEOUT_S = 30  # per HTTP request at most; a healthy server answers in milliseconds

_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED"}
_TRANSIENT_NAMES = {
    # by name, so this module imports neither requests nor sqlalchemy
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "ChunkedEncodingError",
    "ProtocolError",
    "MaxRetryError",
    "OperationalError",  # sqlalchemy: "database is locked", a dropped connection
}


def is_transient(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a store fault worth retrying."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if type(cur).__name__ in _TRANSIENT_NAMES or isinstance(cur, ConnectionError):
            return True
        if getattr(cur, "error_code", None) in _TRANSIENT_CODES:
            return True
        text = str(cur)
        # MLflow re-raises a failed HTTP request as a bare MlflowException with this text
        if "Max retries exceeded" in text or "database is locked" in text:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def http_timeout_s(give_up_s: float) -> int:
    """MLflow's per-request timeout under deadline `give_up_s`: a quarter of it, 1 to 30 s."""
    return int(max(1, min(HTTP_TIMEOUT_S, give_up_s // 4)))


def call_bound_s(give_up_s: float) -> float:
    """The longest one tracking call takes under `bound_http`: a connect and a read, each
    up to the request timeout (MLflow retries nothing itself)."""
    return 2.0 * http_timeout_s(give_up_s)


def bound_http(give_up_s: float) -> None:
    """Set MLflow's HTTP retry and timeout settings of this process (MLflow reads them at
    every request) so that one call lasts at most `call_bound_s`: no retries of its own
    (this module retries), and a request timeout of `http_timeout_s`.

    Called in the trial's process (a Ray worker, which runs only trials).
    """
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(http_timeout_s(give_up_s))


def retrying(fn: Any, give_up_s: float = GIVE_UP_S) -> Any:
    """`fn`, retried with jittered exponential backoff while its errors are transient, and
    given up so that the last try ends within `give_up_s` of the first (see bound_http)."""
    return retry(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(initial=FIRST_WAIT_S, max=MAX_WAIT_S),
        # A retry starts only if its sleep and its worst-case call still fit.
        stop=stop_before_delay(max(0.0, give_up_s - call_bound_s(give_up_s))),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )(fn)


class RetryingClient:
    """An MlflowClient whose every method retries transient store faults."""

    def __init__(self, client: Any, give_up_s: float = GIVE_UP_S) -> None:
        self._client = client
        self._give_up_s = give_up_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        return retrying(attr, self._give_up_s) if callable(attr) else attr
