"""Build a directory once, safely when several processes (trials) want it at the same time.

The builder writes into a fresh temporary directory next to the target, then renames it
into place: the target either does not exist or is complete, never half written. A file
lock next to the target makes the other processes wait instead of building it again; on a
file system where the lock does not hold, the rename still keeps the target whole (the
loser discards its copy).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from mtl_core.files import atomic_path

DONE = "done"  # written last inside the temporary directory: the build completed


def is_built(target: Path) -> bool:
    """True when `target` holds a complete build."""
    return (target / DONE).is_file()


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Make `target` with `build(tmp_dir)` unless it already exists; returns `target`.

    `build` fills the empty directory it is given. It runs at most once per target across
    processes that share the file system (one holds the lock, the others wait and then
    find the target built). A failed build leaves nothing behind.
    """
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if is_built(target):
            return target
        if target.exists():  # left by something else than this function: not ours to trust
            shutil.rmtree(target)
        try:
            with atomic_path(target, directory=True) as tmp:
                build(tmp)
                (tmp / DONE).write_text("")
        except OSError:
            if not is_built(target):  # not someone else's complete copy: a real error
                raise
    return target
