"""SIGINT and SIGTERM during `mtl-sweep run`: stop Tune cleanly, never report success.

The first signal asks Tune to stop every trial (a Tune Stopper, polled between results);
trials keep their last checkpoint, end their runs KILLED, and resume from the checkpoint
on the next run. A second signal aborts at once, except while the driver ends the runs
(`shielded`, a second or two): there it is deferred, and a third aborts even that. The
driver then exits 128 + signal: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """Which signal arrived, if any, and a Tune Stopper that obeys it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._conditions: list[Callable[[], bool]] = []
        self._shielded = self._deferred = False

    @property
    def requested(self) -> bool:
        """True once SIGINT or SIGTERM arrived."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """SIGINT or SIGTERM."""
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
        assert self.signum is not None
        return 128 + self.signum

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if self._shielded and not self._deferred:
                self._deferred = True
                click.echo("ending the runs first (signal again to abort even that)", err=True)
                return
            raise KeyboardInterrupt  # the second signal: abort now
        self.signum = signum
        click.echo(
            f"\n{signal.Signals(signum).name}: stopping the trials; they resume from their "
            "last checkpoint on the next run (signal again to abort now)",
            err=True,
        )

    def reclaim(self) -> None:
        """Handle the signals again after a library took them (ray.init installs a SIGTERM
        handler that aborts the process)."""
        for s in SIGNALS:
            signal.signal(s, self._handle)

    @contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Handle SIGINT and SIGTERM in this block (the main thread only)."""
        old = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in old.items():
                # Interrupted, the driver only exits from here: a late second signal must
                # not turn exit 130 into a traceback in an exit handler.
                signal.signal(s, signal.SIG_IGN if self.requested else handler)

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Defer one abort in this block: the driver is ending the runs KILLED, and an
        abort half-way would leave some RUNNING."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

    def stop_when(self, condition: Callable[[], bool]) -> None:
        """Also stop every trial (as `stopper` does) once `condition()` is true."""
        self._conditions.append(condition)

    def stopper(self, also: Callable[[], bool] = lambda: False) -> Any:
        """A Tune Stopper that stops the whole experiment once a signal arrived, or once
        `also()` or a `stop_when` condition is true. Tune asks it after every result and
        every loop (~0.1 s)."""
        from ray.tune.stopper import Stopper

        interrupt = self

        class OnSignal(Stopper):
            def __call__(self, trial_id: str, result: dict) -> bool:
                return self.stop_all()

            def stop_all(self) -> bool:
                return interrupt.requested or also() or any(c() for c in interrupt._conditions)

        return OnSignal()
