"""Atomic writes: a reader sees the old target or the complete new one, never half of it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
