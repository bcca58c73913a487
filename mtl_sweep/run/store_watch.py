"""The driver's heartbeat on the tracking store while a sweep runs.

Trials give up on a store that stays unreachable after their deadline, once per attempt
(trainables/store_retry.py). Without a word from the driver that would look like a
silent hang; so a thread probes the store every PROBE_EVERY_S (the bounded probe every
command starts with, store/health.py, without sqlite's whole-file check) and says, in one
line, when it went away and when the trials will fail. Once the store has been
unreachable for the deadline times a trial's attempts (plus GRACE_S for the last attempt
to end), the sweep gives up: the runner stops Tune and exits 3. A store that comes back
is said in one line too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import click

from mtl_core.errors import InfraError
from mtl_sweep.run.prepare import Flag
from mtl_sweep.store.health import check_store

PROBE_EVERY_S = 15.0  # the line comes within this plus one probe's timeout (5 s)
GRACE_S = 15.0  # after the trials' last attempt gave up: Tune reports it failed


def shown_uri(uri: str) -> str:
    """The URI without user and password."""
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return urlunsplit(parts)


def clock_time(t: float) -> str:
    """Unix seconds as local HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(t))


class StoreWatch:
    """Probe the store in the background; `gave_up` (a Flag, which a Tune Stopper can
    hold) is raised once it stayed down too long."""

    def __init__(
        self,
        uri: str,
        deadline_s: float,
        attempts: int,
        probe: Callable[[str], None] = lambda uri: check_store(uri, thorough=False),
    ) -> None:
        self.uri, self.deadline_s, self.attempts = uri, deadline_s, attempts
        self._probe = probe
        self.down_since: float | None = None
        self.reason = ""
        self.gave_up = Flag()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def give_up_after_s(self) -> float:
        """How long the store may stay down before the sweep gives up."""
        return self.deadline_s * self.attempts + GRACE_S

    def check(self) -> bool:
        """Probe now; report a change in one line; True when the store answered. Raises
        `gave_up` once the store has been unreachable for `give_up_after_s`."""
        try:
            self._probe(self.uri)
        except InfraError as exc:
            if self.down_since is None:
                self.down_since, self.reason = time.time(), str(exc)
                self._say_down()
            self.gave_up.up = time.time() - self.down_since >= self.give_up_after_s
            return False
        if self.down_since is not None:
            away = time.time() - self.down_since
            self.down_since = None
            click.echo(f"tracking store {shown_uri(self.uri)} reachable again after {away:.0f}s")
        return True

    def _say_down(self) -> None:
        assert self.down_since is not None
        fail_at = self.down_since + self.deadline_s * self.attempts
        click.echo(
            f"warning: tracking store {shown_uri(self.uri)} unreachable since "
            f"{clock_time(self.down_since)}; trials will fail after {clock_time(fail_at)} "
            f"({self.deadline_s:g}s deadline x {self.attempts} attempt(s), "
            "$MTL_SWEEP_STORE_DEADLINE_S), and the sweep then exits 3",
            err=True,
        )

    def verdict(self) -> str:
        """The exit-3 line: since when the store is down, and what the next run does."""
        since = clock_time(self.down_since) if self.down_since else "the end"
        return (
            f"tracking store {shown_uri(self.uri)} unreachable since {since} ({self.reason}); "
            "gave the sweep up. The next run, once it is back, takes over the lease and "
            "resumes the trials from their checkpoints"
        )

    def start(self) -> None:
        """Probe every PROBE_EVERY_S in a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="store-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the background probes (an ongoing one finishes within its timeout)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(PROBE_EVERY_S):
            self.check()
