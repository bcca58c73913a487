"""Face data: loaders for the real formats, the decoded cache, batches, augmentation and
the synthetic face generator.

The names below are imported on first use, so that `import trainables.data.<module>` for
the numpy-only parts (loaders, cache building, the generator) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mtl_core.cachedir import default_cache_dir

if TYPE_CHECKING:
    from trainables.data.augmentation import augment
    from trainables.data.batches import Batch, MultiSourceBatches, eval_batches, eval_jobs
    from trainables.data.cache import CachedSplit, build_cache, load_split
    from trainables.data.prefetch import prefetch
    from trainables.data.source import ResolvedSource, resolve_source

_EXPORTS = {
    "augment": "trainables.data.augmentation",
    "Batch": "trainables.data.batches",
    "MultiSourceBatches": "trainables.data.batches",
    "eval_batches": "trainables.data.batches",
    "eval_jobs": "trainables.data.batches",
    "prefetch": "trainables.data.prefetch",
    "CachedSplit": "trainables.data.cache",
    "build_cache": "trainables.data.cache",
    "load_split": "trainables.data.cache",
    "ResolvedSource": "trainables.data.source",
    "resolve_source": "trainables.data.source",
}

__all__ = [
    "Batch",
    "CachedSplit",
    "MultiSourceBatches",
    "ResolvedSource",
    "augment",
    "build_cache",
    "default_cache_dir",
    "eval_batches",
    "eval_jobs",
    "load_split",
    "prefetch",
    "resolve_source",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'trainables.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
