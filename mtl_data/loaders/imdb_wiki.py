"""IMDB-WIKI: imdb.mat / wiki.mat plus the face crops, cleaned the usual way.

No official split: every entry gets a split from `split_seed` before cleaning (so each
drop is counted in the split it would have joined), by identity (IMDB celeb_id, WIKI
name) so that no person is in two splits, then the filters run in order and a
dropped entry counts under the first one it fails:
0. bad_path / bad_box: a full_path cell that is not one string, a face_location cell
   that is not four numbers (a field of the wrong length or type is an error instead);
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

import mtl_data.drops as drops
from mtl_core.errors import DataError
from mtl_core.sources import SPLITS
from mtl_core.tasks import AGE_RANGE
from mtl_data.loaders.base import Loader
from mtl_data.manifest import Manifest, ManifestBuilder, grouped_split


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


def _numeric(meta: np.void, name: str, path: Path, n: int) -> np.ndarray:
    """A 1xN numeric field as (n,) float64; DataError naming the field otherwise."""
    values = _field(meta, name, path)
    if len(values) != n:
        raise DataError(f"{path}: field {name!r} has {len(values)} entries, full_path has {n}")
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        bad = next((v for v in values if not _is_number(v)), values[0])
        raise DataError(f"{path}: field {name!r} holds non-numbers (e.g. {bad!r})") from None


def _is_number(value: object) -> bool:
    try:
        float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return False
    return True


def _text(cell: object) -> str | None:
    """A MATLAB string cell (an array holding one str) as str; None if it is not one."""
    arr = np.asarray(cell).reshape(-1)
    if len(arr) != 1 or not isinstance(arr[0], str) or not arr[0]:
        return None
    return arr[0]


def _box(cell: object) -> tuple[float, float, float, float] | None:
    """face_location [x1, y1, x2, y2] (1-based, inclusive) as 0-based edges; None unless
    it is exactly four numbers."""
    try:
        arr = np.asarray(cell, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return None
    if arr.shape != (4,):
        return None
    x1, y1, x2, y2 = arr.tolist()
    return (x1 - 1, y1 - 1, x2, y2)


def _reason(score: float, second: float, age: float, gender: float, min_score: float) -> str | None:
    """The first of the usual cleaning filters that an entry fails (module docstring)."""
    if not math.isfinite(score) or score < min_score:
        return drops.FACE_SCORE
    if math.isfinite(second) and second > 0:
        return drops.SECOND_FACE
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:  # False for NaN too
        return drops.AGE_RANGE
    if math.isnan(gender):
        return drops.GENDER_NAN
    return None


class ImdbWikiLoader(Loader):
    """Age (from dob and photo year) and gender (1 male, 0 female), with face boxes.

    The root is the folder holding `<db>_crop/` or the `<db>_crop` folder itself, with db
    `imdb` (imdb_crop/imdb.mat) or `wiki` (wiki_crop/wiki.mat).
    """

    kind = "imdb_wiki"
    version = 2  # 2: split by identity (1: per image)

    def _mat(self, root: Path, opts: Mapping[str, Any]) -> Path:
        db = opts.get("db", "imdb")
        inside = root / f"{db}.mat"  # root is the crop folder itself
        return inside if inside.is_file() else root / f"{db}_crop" / f"{db}.mat"

    def required(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [self._mat(root, opts)]

    def metadata(self, root: Path, opts: Mapping[str, Any]) -> list[Path]:
        return [self._mat(root, opts)]

    def check_exists(self, root: Path, opts: Mapping[str, Any]) -> None:
        """As Loader's, with a hint when the other half of IMDB-WIKI is there instead."""
        try:
            super().check_exists(root, opts)
        except DataError as exc:
            db = opts.get("db", "imdb")
            other = "wiki" if db == "imdb" else "imdb"
            if self._mat(root, {"db": other}).is_file():
                raise DataError(
                    f"{exc}; {root} holds the {other} release: set db={other}"
                ) from None
            raise

    def read(self, root: Path, opts: Mapping[str, Any]) -> dict[str, Manifest]:
        db = opts.get("db", "imdb")
        path = self._mat(root, opts)
        meta = _load_meta(path, db)
        cells = _field(meta, "full_path", path)
        n = len(cells)
        dob, year, gender, score, second = (
            _numeric(meta, name, path, n)
            for name in ("dob", "photo_taken", "gender", "face_score", "second_face_score")
        )
        loc = _field(meta, "face_location", path)
        if len(loc) != n:
            raise DataError(
                f"{path}: field 'face_location' has {len(loc)} entries, full_path has {n}"
            )
        split = grouped_split(
            identities(meta, db, path, n),
            opts.get("val_fraction", 0.05),
            opts.get("test_fraction", 0.1),
            opts.get("split_seed", 0),
        )
        min_score = opts.get("min_face_score", 1.0)
        builders = {s: ManifestBuilder(image_root=str(path.parent)) for s in SPLITS}
        clean: list[tuple[int, str, tuple[float, float, float, float], float]] = []
        for i in range(n):
            name, box, age = _text(cells[i]), _box(loc[i]), imdb_age(dob[i], year[i])
            if name is None:
                reason = drops.BAD_PATH
            elif box is None:
                reason = drops.BAD_BOX
            else:
                reason = _reason(score[i], second[i], age, gender[i], min_score)
            if reason:
                builders[split[i]].drop(reason)
            else:
                clean.append((i, name, box, age))
        cap = opts.get("max_images")
        if cap is not None and len(clean) > cap:
            order = np.random.default_rng([opts.get("split_seed", 0), 1]).permutation(len(clean))
            keep = set(order[:cap].tolist())
            for j, (i, *_) in enumerate(clean):
                if j not in keep:
                    builders[split[i]].drop(drops.OVER_MAX_IMAGES)
            clean = [c for j, c in enumerate(clean) if j in keep]
        for i, name, box, age in clean:
            labels = {"age": age, "gender": gender[i]}
            builders[split[i]].add(str(path.parent / name), name, labels, box=box)
        return {s: b.build() for s, b in builders.items()}


def _load_meta(path: Path, db: str) -> np.void:
    """The metadata struct `meta[db][0, 0]` of an IMDB-WIKI .mat file."""
    import scipy.io

    try:
        return scipy.io.loadmat(path)[db][0, 0]
    except KeyError:
        raise DataError(f"{path}: no {db!r} struct in it (is db={db} right?)") from None
    except (IndexError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataError(f"{path}: not an IMDB-WIKI metadata file ({exc})") from None
    except Exception as exc:  # scipy's MatReadError and friends: a damaged file
        raise DataError(f"{path}: cannot read it ({type(exc).__name__}: {exc})") from None
