"""Atomic writes (a reader sees the old target or the complete new one, never half of it),
and folders a user named, checked before anything is written to them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mtl_core.errors import UserError


@contextmanager
def atomic_path(target: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary file (or folder) next to `target`; rename it into place when
    the block ends without error, and remove it when it raises.

    A file replaces `target` (os.replace); a folder is renamed onto a missing or empty
    `target`, and raises OSError when `target` is a non-empty folder (someone else won).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            os.rename(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def writable_dir(path: Path, what: str) -> Path:
    """Create folder `path` (and its parents) if needed and check that it can be written;
    returns it. Raises UserError naming `what` (e.g. "the cache folder") when it cannot:
    a user's path that is a file, or under one, or read-only, is a one-line error."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    try:  # by writing, not os.access: root passes that check where nothing can be written
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise UserError(f"{what} {path} is not writable: {exc.strerror or exc}") from None
    return path
