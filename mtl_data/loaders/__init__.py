"""Loaders by source kind: each reads one dataset's published on-disk format.

A loader says which paths must exist (`required`), which label files identify the data
(`metadata`, hashed into the decoded cache's key) and reads every split into a
`Manifest` (`read`). `get_loader` fails loudly on an unknown kind and lists the known ones.
"""

from __future__ import annotations

from mtl_data.loaders.base import Loader, get_loader, list_loaders

__all__ = ["Loader", "get_loader", "list_loaders"]
