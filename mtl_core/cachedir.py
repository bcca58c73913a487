"""Where decoded-image caches and generated synthetic data live. Plain Python, no torch.

Resolution, the same for the CLI and the trainables: the spec's `data.cache_dir`, then
$MTL_SWEEP_CACHE, then ~/.cache/mtl-sweep.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MTL_SWEEP_CACHE"


def default_cache_dir(spec_value: str | None = None) -> Path:
    """The cache folder: `spec_value`, else $MTL_SWEEP_CACHE, else ~/.cache/mtl-sweep.

    Returned absolute (trials run in other working directories); `~` is expanded.
    """
    value = spec_value or os.environ.get(ENV_VAR) or "~/.cache/mtl-sweep"
    return Path(os.path.normpath(Path(value).expanduser().absolute()))
