"""A local copy of what was last read from a store, used while the store has not changed.

The copy lives in the cache folder (`$MTL_SWEEP_CACHE`, else ~/.cache/mtl-sweep) under
`store-reads/`, one file per store and question, and holds the store's fingerprint from
before the read (see `SqlReader.fingerprint`): any write since then changes the fingerprint
and the next read goes to the store again. A store with no fingerprint (a server) is
always read. The files are pickles that only this user's own commands write; a file that
cannot be read or written costs a read of the store, never an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mtl_core.cachedir import default_cache_dir
from mtl_sweep.store.runs_read import Reader

T = TypeVar("T")
FOLDER = "store-reads"
FORMAT = 1  # bump when the file layout changes
KEEP = 16  # copies kept (the most recently written); a store's copy is rewritten per change


def cached(reader: Reader, name: tuple[Any, ...], read: Callable[[], T]) -> T:
    """`read()`, or the value it returned last time for `name` if the store has not changed
    since (by `reader.fingerprint()`)."""
    before = reader.fingerprint()
    if before is None:
        return read()
    path = _path(name)
    try:
        with path.open("rb") as f:
            fmt, fingerprint, value = pickle.load(f)
        if fmt == FORMAT and fingerprint == before:
            return value
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError):
        pass  # no copy yet, or one this code cannot read: read the store
    value = read()
    _write(path, (FORMAT, before, value))
    return value


def _path(name: tuple[Any, ...]) -> Path:
    digest = hashlib.sha256(repr(name).encode()).hexdigest()[:32]
    return default_cache_dir() / FOLDER / f"{digest}.pickle"


def _write(path: Path, content: Any) -> None:
    """Write atomically (a concurrent reader sees the old file or the new one); a folder
    that cannot be written only costs the next read its speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(content, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        copies = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns)
        for old in copies[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
