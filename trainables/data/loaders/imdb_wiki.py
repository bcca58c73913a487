"""IMDB-WIKI: imdb.mat / wiki.mat plus the face crops, cleaned the usual way.

No official split: every entry gets a split from `split_seed` before cleaning (so each
drop is counted in the split it would have joined), by identity (IMDB celeb_id, WIKI
name) so that no person is in two splits, then the filters run in order and a
dropped entry counts under the first one it fails:
1. face_score: non-finite (no face found; the box is the whole image) or < min_face_score;
2. second_face: a finite second_face_score > 0;
3. age_range: age outside 0..100 (or not computable);
4. gender_nan: unknown gender.
`max_images` then keeps a seeded random subset of the clean entries.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import DataError
from mtl_core.sources import SPLITS
from mtl_core.tasks import AGE_RANGE
from trainables.data import drops
from trainables.data.loaders.base import Loader
from trainables.data.manifest import Manifest, ManifestBuilder, grouped_split


def imdb_age(dob: float, photo_taken: float) -> float:
    """Age in years from a MATLAB datenum of birth and the photo's year (REFERENCES.md).

    The photo is taken on 1 July: age = photo_taken - birth.year - (birth.month >= 7), with
    birth = date.fromordinal(max(int(dob) - 366, 1)). NaN when either is not a valid number.
    Example: dob 723671 (1981-05-05), photo 2009 -> 28.
    """
    if not (math.isfinite(dob) and math.isfinite(photo_taken)):
        return math.nan
    try:
        birth = dt.date.fromordinal(max(int(dob) - 366, 1))
    except (ValueError, OverflowError):
        return math.nan
    return float(photo_taken - birth.year - (birth.month >= 7))


def _field(meta: np.void, name: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(meta[name]).reshape(-1)
    except (KeyError, ValueError):
        raise DataError(f"{path}: no field {name!r} in the metadata struct") from None


def identities(meta: np.void, db: str, path: Path, n: int) -> list[str]:
    """Who each entry shows: IMDB's celeb_id, WIKI's name (WIKI has no celeb_id).

    The held-out splits are drawn by person, so nobody is in two splits. An entry with no
    identity (NaN id, empty name) is a person of its own.
    """
    if db == "imdb":
        ids = _field(meta, "celeb_id", path).astype(float)
        out = [str(int(v)) if math.isfinite(v) else "" for v in ids]
    else:
        names = [np.asarray(v).reshape(-1) for v in _field(meta, "name", path)]
        out = [str(v[0]).strip() if v.size else "" for v in names]
    if len(out) != n:
        raise DataError(f"{path}: {len(out)} identities for {n} images")
    return [v or f"\0entry {i}" for i, v in enumerate(out)]  # NUL: never a real id or name


class ImdbWikiLoader(Loader):
    """Age (from dob and photo year) and gender (1 male, 0 female), with face boxes."""

    kind = "imdb_wiki"
    version = 2  # 2: split by identity (1: per image)

    def _mat(self, root: Path, opts: Mapping[str, Any]) -> Path:
        db = opts.get("db", "imdb")
        return root / f"{db}_crop" / f"{db}.mat"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [self._mat(root, opts)]

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [self._mat(root, opts)]

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        import scipy.io

        db = opts.get("db", "imdb")
        path = self._mat(root, opts)
        try:
            meta = scipy.io.loadmat(path)[db][0, 0]
        except (KeyError, IndexError, ValueError, OSError) as exc:
            raise DataError(f"{path}: not an IMDB-WIKI metadata file ({exc})") from None
        full_path = [str(np.asarray(p).reshape(-1)[0]) for p in _field(meta, "full_path", path)]
        dob = _field(meta, "dob", path).astype(float)
        year = _field(meta, "photo_taken", path).astype(float)
        gender = _field(meta, "gender", path).astype(float)
        score = _field(meta, "face_score", path).astype(float)
        second = _field(meta, "second_face_score", path).astype(float)
        loc = _field(meta, "face_location", path)
        n = len(full_path)
        split = grouped_split(
            identities(meta, db, path, n),
            opts.get("val_fraction", 0.05),
            opts.get("test_fraction", 0.1),
            opts.get("split_seed", 0),
        )
        min_score = opts.get("min_face_score", 1.0)
        builders = {s: ManifestBuilder() for s in SPLITS}
        clean: list[int] = []
        ages = np.full(n, math.nan)
        for i in range(n):
            ages[i] = imdb_age(dob[i], year[i])
            reason = None
            if not math.isfinite(score[i]) or score[i] < min_score:
                reason = drops.FACE_SCORE
            elif math.isfinite(second[i]) and second[i] > 0:
                reason = drops.SECOND_FACE
            elif not AGE_RANGE[0] <= ages[i] <= AGE_RANGE[1]:  # False for NaN too
                reason = drops.AGE_RANGE
            elif math.isnan(gender[i]):
                reason = drops.GENDER_NAN
            if reason:
                builders[split[i]].drop(reason)
            else:
                clean.append(i)
        cap = opts.get("max_images")
        if cap is not None and len(clean) > cap:
            order = np.random.default_rng([opts.get("split_seed", 0), 1]).permutation(len(clean))
            keep = set(np.asarray(clean)[order[:cap]].tolist())
            for i in clean:
                if i not in keep:
                    builders[split[i]].drop(drops.OVER_MAX_IMAGES)
            clean = [i for i in clean if i in keep]
        crop = path.parent
        for i in clean:
            x1, y1, x2, y2 = np.asarray(loc[i], float).reshape(-1)[:4]
            box = (x1 - 1, y1 - 1, x2, y2)  # 1-based inclusive -> 0-based edges
            labels = {"age": ages[i], "gender": gender[i]}
            builders[split[i]].add(str(crop / full_path[i]), full_path[i], labels, box=box)
        return {s: b.build() for s, b in builders.items()}
