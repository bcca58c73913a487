"""One driver per sweep: a lease on the sweep run, plus a file lock for sqlite stores.

The lease is two tags on the sweep's parent run: `mtl_sweep.driver` (host, pid and a
random id) and `mtl_sweep.heartbeat` (unix seconds, renewed every HEARTBEAT_S). Another
driver of the same sweep exits 2 naming the holder. A lease is stale, and taken over with
a message, when its holder's pid is gone (same host) or its heartbeat is older than
STALE_S. A sqlite store also gets an OS file lock next to the database, which closes the
race of two drivers reading the tags at the same moment.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import click
from filelock import FileLock, Timeout

from mtl_core.errors import UserError

DRIVER_TAG = "mtl_sweep.driver"
HEARTBEAT_TAG = "mtl_sweep.heartbeat"
HEARTBEAT_S = 20.0
STALE_S = 120.0  # a holder silent this long is presumed dead (documented in docs/cli.md)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(uri: str, sweep: str) -> Path | None:
    """The driver's file lock of a sqlite store: next to the database, so every driver of
    that database finds it (.gitignore covers its name); None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    return db.parent / f".{db.name}.{sweep}.driver.lock"


class Lease:
    """Hold the sweep run's lease for this process; `release` (or exit) gives it up."""

    def __init__(self, client: Any, run_id: str, uri: str, sweep: str) -> None:
        self.client, self.run_id = client, run_id
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        where = lock_path(uri, sweep)
        self._lock = FileLock(str(where)) if where is not None else None
        self.took_over: str | None = None

    def acquire(self) -> None:
        """Take the lease, or raise UserError (exit 2) naming the live holder."""
        if self._lock is not None:
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                raise UserError(
                    f"another driver is running this sweep ({self._holder()})"
                ) from None
        holder = self._holder()
        if holder and not self._stale():
            self._release_lock()
            raise UserError(
                f"another driver is running this sweep ({holder}); wait for it, or stop it"
            )
        self.took_over = holder or None
        self._beat()
        self.client.set_tag(self.run_id, DRIVER_TAG, self.me)
        self._thread = threading.Thread(target=self._run, name="mtl-sweep-lease", daemon=True)
        self._thread.start()
        if self.took_over:
            click.echo(f"took over the sweep from a stale driver ({self.took_over})")

    def release(self) -> None:
        """Stop the heartbeat and clear the lease. Never raises: the store may be what failed."""
        self._stop.set()
        try:
            if self._tags().get(DRIVER_TAG) == self.me:
                self.client.delete_tag(self.run_id, DRIVER_TAG)
        except Exception:  # a stale lease is taken over next time
            pass
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()

    def _tags(self) -> dict[str, str]:
        return self.client.get_run(self.run_id).data.tags

    def _holder(self) -> str:
        return self._tags().get(DRIVER_TAG, "")

    def _stale(self) -> bool:
        tags = self._tags()
        host, _, rest = tags.get(DRIVER_TAG, "").partition(":")
        pid = rest.partition(":")[0]
        if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
            return True
        beat = float(tags.get(HEARTBEAT_TAG, "0") or 0)
        return time.time() - beat > STALE_S

    def _beat(self) -> None:
        self.client.set_tag(self.run_id, HEARTBEAT_TAG, f"{time.time():.0f}")

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._beat()
            except Exception:  # a blip: the next beat retries
                continue
