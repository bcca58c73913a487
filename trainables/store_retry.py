"""Retry a trial's tracking calls through transient store faults, with backoff.

A trial runs for hours; its tracking server restarts, or its sqlite file is locked by
another writer for longer than sqlite's busy timeout. MLflow's HTTP client already
retries a refused connection for a few minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES); this
layer covers what it leaves: a sqlite "database is locked", a server that answers 503 or
resets mid-request, and an outage longer than MLflow's own retries. A permanent error (a
bad parameter, a missing run) is raised at once.
"""

from __future__ import annotations

import logging
from typing import Any

from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

# Up to ten minutes in all: a store restart, or a failover of its database, fits in it;
# a store that stays down fails the trial, which keeps its checkpoint and resumes later.
GIVE_UP_S = 600.0
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 60.0

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


def retrying(fn: Any, give_up_s: float = GIVE_UP_S) -> Any:
    """`fn`, retried with jittered exponential backoff while its errors are transient."""
    return retry(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(initial=FIRST_WAIT_S, max=MAX_WAIT_S),
        stop=stop_after_delay(give_up_s),
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
