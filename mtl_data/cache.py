"""The decoded cache: every image of a source decoded once, then only memory-mapped.

Layout: cache_dir/decoded/<kind>-<size>px-<key>/ with, per split,
    <split>.npy         (N, size, size, 3) uint8 images, opened with mmap_mode="r"
    <split>.labels.npz  task -> (N,) float32 (NaN = no label), plus age_std
    <split>.names.txt   one identifier per image, in the same order
and meta.json with the source, the preprocessing and each split's usable/dropped counts.

The key is a hash of the source (kind, root, options), the loader's version, the
preprocessing (image size, box margin, resampling, CACHE_VERSION) and the *contents* of
its label files (CSV, .mat, list files). It does not hash the image files themselves
(that would cost as much as decoding them): after changing images in place, delete the
cache folder.

Building decodes with one thread per core (PIL releases the GIL) and shows a tqdm bar on
stderr. It writes into a temporary folder that is renamed into place, under a file lock,
so concurrent trials never see a partial cache (see atomic.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import DataError
from mtl_core.sources import SPLITS
from mtl_core.tasks import TASKS
from mtl_data.atomic import build_once
from mtl_data.decode import BOX_MARGIN, decode_file, decode_pixels
from mtl_data.loaders import get_loader
from mtl_data.manifest import Manifest
from mtl_data.parallel import default_workers
from mtl_data.progress_bar import progress_bar
from mtl_data.source import ResolvedSource

CACHE_VERSION = 2  # bump when decoding changes, so old caches are not reused (2: path checks)
CHUNK = 64  # images per worker task: amortises the thread hand-off


@dataclass
class CachedSplit:
    """One split of one source, decoded.

    images: (N, H, W, 3) uint8, memory-mapped from the cache.
    labels: task -> (N,) float32 for every task in TASKS; NaN = no label (never guessed).
        age in years (ChaLearn: the mean vote); gender 1 male / 0 female; smile 1 / 0;
        emotion 0..6 in FER order.
    age_std: (N,) float32 per-image std of the age label (ChaLearn stdv); NaN = unknown.
    stats: {"usable": N, "dropped": {reason: count}} for this split.
    """

    images: np.ndarray
    labels: dict[str, np.ndarray]
    age_std: np.ndarray | None
    stats: dict[str, Any]
    source: ResolvedSource | None = None
    split: str = ""
    names_file: Path | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks with at least one label in this split, in canonical order."""
        return tuple(t for t in TASKS if np.isfinite(self.labels[t]).any())

    def names(self) -> list[str]:
        """Each image's identifier (relative path or row), in order; read on demand."""
        if self.names_file is None:
            return [str(i) for i in range(len(self))]
        text = self.names_file.read_text()
        return text.split("\n")[:-1] if text else []


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's contents; memoised on (path, size, mtime) within a process."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(src: ResolvedSource, image_size: int) -> str:
    """16 hex digits identifying a decoded cache (see the module docstring)."""
    loader = get_loader(src.kind)
    files = {}
    for path in loader.metadata(Path(src.root), src.opts):
        st = path.stat()
        files[path.name] = _file_digest(str(path), st.st_size, st.st_mtime_ns)
    fields = {
        "kind": src.kind,
        "root": src.root,
        "options": src.opts,
        "image_size": image_size,
        "preprocess": preprocess(),
        "files": files,
    }
    if loader.version > 1:  # absent at 1, so caches built before loaders had versions stay
        fields["loader_version"] = loader.version
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def preprocess() -> dict[str, Any]:
    """The decoding settings that change the cached pixels."""
    return {"version": CACHE_VERSION, "box_margin": BOX_MARGIN, "resample": "bicubic"}


def cache_path(src: ResolvedSource, image_size: int, cache_dir: Path) -> Path:
    """The folder holding `src` decoded at `image_size` (built or not)."""
    return Path(cache_dir) / "decoded" / f"{src.kind}-{image_size}px-{cache_key(src, image_size)}"


def build_cache(
    src: ResolvedSource,
    image_size: int,
    cache_dir: Path,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Decode every split of `src` into the cache unless it is there; returns its folder.

    A full disk is a DataError naming the folder; the partial build is removed.
    """
    target = cache_path(src, image_size, cache_dir)
    try:
        return build_once(
            target,
            lambda tmp: _build(tmp, src, image_size, progress, workers or default_workers()),
        )
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DataError(
            f"no space left in {target.parent} while building the decoded cache of {src}; "
            "free some, or point data.cache_dir / $MTL_SWEEP_CACHE elsewhere"
        ) from None


def _preallocated(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A new .npy memmap whose blocks are all allocated now, after checking free space.

    open_memmap alone makes a sparse file: on a full disk the writes into the mapping
    would then die with SIGBUS. Allocating up front turns that into ENOSPC, here.
    """
    need = int(np.prod(shape)) + 4096  # + the header, at most a page
    free = shutil.disk_usage(path.parent).free
    if need > free:
        raise OSError(errno.ENOSPC, f"{need:,} bytes needed, {free:,} free", str(path.parent))
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    if hasattr(os, "posix_fallocate") and need > 4096:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return images


def load_split(
    src: ResolvedSource, split: str, image_size: int, cache_dir: Path, progress: bool = True
) -> CachedSplit:
    """One split of `src`, decoded at image_size x image_size: built on first use, then
    only read (the images are memory-mapped)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    folder = build_cache(src, image_size, cache_dir, progress)
    meta = json.loads((folder / "meta.json").read_text())
    with np.load(folder / f"{split}.labels.npz") as z:
        labels = {t: z[t] for t in TASKS}
        age_std = z["age_std"]
    return CachedSplit(
        images=np.load(folder / f"{split}.npy", mmap_mode="r"),
        labels=labels,
        age_std=age_std,
        stats=meta["splits"][split],
        source=src,
        split=split,
        names_file=folder / f"{split}.names.txt",
    )


def _build(tmp: Path, src: ResolvedSource, size: int, progress: bool, workers: int) -> None:
    manifests = get_loader(src.kind).read(Path(src.root), src.opts)
    splits = {}
    for split in SPLITS:
        m = manifests[split]
        desc = f"decoding {src.kind} {split}"
        kept, failed = _decode_split(m, size, tmp / f"{split}.npy", desc, progress, workers)
        np.savez(
            tmp / f"{split}.labels.npz",
            **{t: m.labels[t][kept] for t in TASKS},
            age_std=m.age_std[kept],
        )
        (tmp / f"{split}.names.txt").write_text("".join(m.names[i] + "\n" for i in kept))
        dropped = Counter(m.dropped) + failed
        splits[split] = {"usable": len(kept), "dropped": dict(sorted(dropped.items()))}
    meta = {
        "source": {"kind": src.kind, "root": src.root, "options": src.opts},
        "image_size": size,
        "preprocess": preprocess(),
        "splits": splits,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _decode_split(
    m: Manifest, size: int, out: Path, desc: str, progress: bool, workers: int
) -> tuple[np.ndarray, Counter[str]]:
    """Decode a manifest's images into the .npy at `out`, in order, skipping bad files.

    Returns the indices of the images kept and the count of failures per reason.
    """
    n = len(m)
    images = _preallocated(out, (n, size, size, 3))
    kept: list[int] = []
    failed: Counter[str] = Counter()
    bar = progress_bar(n, desc, "img", enabled=progress, stream=sys.stderr)
    with bar:
        if isinstance(m.images, np.ndarray):  # pixels already in memory (FER2013)
            for i in range(n):
                images[i] = decode_pixels(m.images[i], size)
                kept.append(i)
                if i % CHUNK == CHUNK - 1 or i == n - 1:
                    bar.update(i % CHUNK + 1)
        else:
            chunks = [range(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]

            def work(idx: range) -> list[tuple[np.ndarray | None, str | None]]:
                return [decode_file(m.images[i], m.boxes[i], size, m.image_root) for i in idx]

            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for idx, results in zip(chunks, pool.map(work, chunks), strict=True):
                    for i, (pixels, reason) in zip(idx, results, strict=True):
                        if pixels is None:
                            failed[reason] += 1
                        else:
                            images[len(kept)] = pixels
                            kept.append(i)
                    bar.update(len(idx))
    images.flush()
    del images
    if len(kept) < n:
        _truncate_npy(out, len(kept))
    return np.asarray(kept, dtype=np.int64), failed


def _truncate_npy(path: Path, rows: int) -> None:
    """Keep only the first `rows` rows of a C-order .npy, in place (no copy of the data).

    The header is rewritten with the smaller shape, padded to its old length so that the
    data offset does not move, and the file is truncated after the last kept row.
    """
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        if version != (1, 0):
            raise ValueError(f"{path}: unexpected .npy version {version}")
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
        new_shape = (rows, *shape[1:])
        descr = np.lib.format.dtype_to_descr(dtype)
        text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {new_shape!r}, }}"
        header = text.ljust(offset - 10 - 1).encode("latin1") + b"\n"  # 10: magic+version+len
        f.seek(10)
        f.write(header)
        f.truncate(offset + rows * int(np.prod(shape[1:])) * dtype.itemsize)
