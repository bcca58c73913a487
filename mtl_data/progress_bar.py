"""One progress bar for every long loop: tqdm on a terminal, a few plain lines elsewhere.

A redrawn bar written to a log file, CI or `nohup` becomes one line of hundreds of
carriage-return redraws. Off a terminal the bar is instead a plain line such as
`synthetic faces: 1856/3712 (50%), 410 img/s` at most every PLAIN_EVERY_S seconds, and
one closing line with the total and the elapsed time.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Protocol, TextIO

PLAIN_EVERY_S = 5.0  # off a terminal, at most one progress line this often


class Bar(Protocol):
    """What the call sites use: `with bar: bar.update(n)`."""

    def update(self, n: int = 1) -> object: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, *exc: object) -> object: ...


class PlainBar:
    """Progress as occasional plain lines (for streams that are not terminals)."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        stream: TextIO,
        every_s: float = PLAIN_EVERY_S,
        clock=time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.every_s, self.clock = every_s, clock
        self.n = 0
        self.start = self.last = clock()

    def update(self, n: int = 1) -> None:
        """Count `n` more items; print a line if the last one is old enough."""
        self.n += n
        now = self.clock()
        if now - self.last >= self.every_s and self.n < self.total:
            self.last = now
            self._write(now, final=False)

    def _write(self, now: float, final: bool) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = f"{self.n / elapsed:.0f} {self.unit}/s"
        if final:
            text = f"{self.desc}: {self.n}/{self.total} {self.unit} in {elapsed:.1f} s ({rate})"
        else:
            pct = 100 * self.n / self.total if self.total else 100.0
            text = f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%), {rate}"
        self.stream.write(text + "\n")
        self.stream.flush()

    def __enter__(self) -> PlainBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self.total:
            self._write(self.clock(), final=True)


class _NoBar:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        """Ignore the count."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(
    total: int, desc: str, unit: str = "img", enabled: bool = True, stream: TextIO | None = None
) -> Bar:
    """A progress bar on `stream` (default stderr): tqdm on a terminal, plain lines elsewhere.

    Nothing is shown when `enabled` is false or there is nothing to count.
    """
    stream = stream or sys.stderr
    if not enabled or total <= 0:
        return _NoBar()
    if _isatty(stream):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream)
    return PlainBar(total, desc, unit, stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False
