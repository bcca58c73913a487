"""Write synthetic faces to disk in the real datasets' own formats (see REFERENCES.md).

Layout under the output folder, one sub-folder per format, each a valid root for its
loader:

    chalearn/   {train,valid,test}_gt.csv (image,mean,stdv) + train/ valid/ test/ JPEGs
    celeba/     list_attr_celeba.txt (40 attributes) + list_eval_partition.txt
                + img_align_celeba/ JPEGs
    fer2013/    fer2013.csv (emotion,pixels,Usage), 48x48 grayscale
    imdb_wiki/  imdb_crop/imdb.mat + imdb_crop/NN/*.jpg, with the usual traps: noisy ages,
                NaN genders, non-finite and low face scores, second faces, a dob near the
                datenum origin

Output is deterministic: each face's randomness is seeded from (seed, format, split,
index), and the .mat header carries no timestamp, so the same knobs give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import mtl_data.drops as drops
from mtl_core.sources import SPLITS, SyntheticSource
from mtl_data.atomic import build_once
from mtl_data.progress_bar import progress_bar
from mtl_data.synthetic.attributes import FaceLabels, FaceLook, draw_labels, draw_look
from mtl_data.synthetic.celeba_attributes import CELEBA_ATTRIBUTES
from mtl_data.synthetic.pool import refuse_in_spawned_import, render_jobs
from mtl_data.synthetic.render import face_box, render_face

# Bump when the rendering or the formats change: it is part of the generated data's key.
GENERATOR_VERSION = 1
CHALEARN_SPLIT = {"train": "train", "val": "valid", "test": "test"}
FER_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
CELEBA_PARTITION = {"train": 0, "val": 1, "test": 2}
# Image sizes (W, H) and how much of the frame the face fills, per format.
CHALEARN_SIZE, CHALEARN_FACE = (64, 64), 0.95
CELEBA_SIZE, CELEBA_FACE = (64, 78), 0.95  # portrait, like CelebA's aligned 178x218
FER_SIZE, FER_FACE = (48, 48), 1.05  # FER2013 crops are tight
IMDB_SIZE, IMDB_FACE = (96, 96), 0.55  # loose crops; face_location marks the face
JPEG_QUALITY = 90
# IMDB-WIKI traps: the share of entries that carry each, so that cleaning is exercised.
IMDB_TRAPS = {
    drops.FACE_SCORE: 0.06,  # half no face found (-Inf), half a low score
    drops.SECOND_FACE: 0.04,
    drops.AGE_RANGE: 0.01,  # dob near the datenum origin
    drops.GENDER_NAN: 0.03,
}
IMDB_AGE_NOISE = 3.0  # years: std of the label noise (dob / photo year vs apparent age)
_FORMAT_ID = {"chalearn": 1, "celeba": 2, "fer2013": 3, "imdb_wiki": 4}
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by mtl-sweep's synthetic generator"


@dataclass
class Record:
    """One written image and the labels written for it."""

    name: str  # path relative to the format's image folder (IMDB: full_path)
    split: str | None  # train / val / test; None for IMDB-WIKI (split by the loader)
    labels: dict[str, float]  # task -> value as written (NaN = written as unknown)
    age_std: float = math.nan  # ChaLearn stdv
    drop: str | None = None  # IMDB-WIKI: the cleaning filter this entry should fail


@dataclass
class Written:
    """What `write_synthetic` wrote: per format, its records in file order."""

    records: dict[str, list[Record]] = field(default_factory=dict)


def synthetic_key(source: SyntheticSource) -> str:
    """A short hash of the knobs (and the generator version) that determine the bytes."""
    knobs = source.model_dump(mode="json")
    knobs["generator_version"] = GENERATOR_VERSION
    blob = json.dumps(knobs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_synthetic(
    source: SyntheticSource,
    cache_dir: Path,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> Path:
    """The generated folder for `source` under cache_dir/synthetic/, written on first use.

    Safe when several trials ask at once: one writes (to a temporary folder, then
    renames it), the others wait for it. `stop` (set from another thread) abandons the
    build, leaving nothing behind.
    """
    target = Path(cache_dir) / "synthetic" / synthetic_key(source)
    refuse_in_spawned_import()  # before waiting on the lock a spawning parent may hold
    return build_once(target, lambda tmp: write_synthetic(tmp, source, progress, stop=stop))


def synthetic_jobs(source: SyntheticSource) -> list[tuple[str, str, int]]:
    """What a source renders: (format, split, number of faces), in writing order."""
    sizes = {"train": source.train, "val": source.val, "test": source.test}
    formats = ("chalearn", "celeba", "fer2013")
    jobs = [(fmt, split, n) for fmt in formats for split, n in sizes.items()]
    return [*jobs, ("imdb_wiki", "all", source.pretrain)]


def write_synthetic(
    out: Path,
    source: SyntheticSource,
    progress: bool = False,
    workers: int | None = None,
    stop: threading.Event | None = None,
) -> Written:
    """Render and write every format under `out` (created if needed); returns the labels.

    Rendering runs on every core (see pool.py; `workers` overrides how many processes)
    and gives the same bytes whatever the number of workers.
    """
    out = Path(out)
    jobs = synthetic_jobs(source)
    total = sum(n for _, _, n in jobs)
    with progress_bar(total, "synthetic faces", "img", enabled=progress) as bar:
        results = render_jobs(jobs, render_range, source, out, bar, workers, stop)
    written = Written()
    written.records["chalearn"] = _finish_chalearn(out / "chalearn", results)
    written.records["celeba"] = _finish_celeba(out / "celeba", results)
    written.records["fer2013"] = _finish_fer(out / "fer2013", results)
    written.records["imdb_wiki"] = _finish_imdb(out / "imdb_wiki", results[("imdb_wiki", "all")])
    meta = {**source.model_dump(mode="json"), "generator_version": GENERATOR_VERSION}
    (out / "synthetic.json").write_text(json.dumps(meta, sort_keys=True) + "\n")
    return written


def render_range(
    fmt: str, split: str, start: int, stop: int, source: SyntheticSource, out: Path
) -> list[tuple[Record, Any]]:
    """Render faces start..stop-1 of one (format, split), writing their images; returns,
    per face, its record and its row for the format's label file."""
    one = _ONE_FACE[fmt]
    prior = "fer" if fmt == "fer2013" else "photo"
    split_id = SPLITS.index(split) if split in SPLITS else len(SPLITS)
    rows = []
    for i in range(start, stop):
        rng = np.random.default_rng([source.seed & 0xFFFFFFFF, _FORMAT_ID[fmt], split_id, i])
        labels = draw_labels(rng, prior)
        look = draw_look(rng, labels, source.nuisance)
        rows.append(one(out / fmt, source, split, i, labels, look, rng))
    return rows


def _save_jpeg(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=JPEG_QUALITY)


# --- ChaLearn --------------------------------------------------------------------------------


def _chalearn_face(
    root: Path,
    source: SyntheticSource,
    split: str,
    i: int,
    lab: FaceLabels,
    look: FaceLook,
    rng: np.random.Generator,
) -> tuple[Record, Any]:
    name = f"{i + 1:06d}.jpg"
    _save_jpeg(
        render_face(lab, look, rng, CHALEARN_SIZE, CHALEARN_FACE),
        root / CHALEARN_SPLIT[split] / name,
    )
    # The mean vote is the age rendered; voters disagree more about older faces.
    std = round(float(rng.uniform(1.5, 4.0) * (1 + lab.age / 100)), 4)
    row = (name, f"{lab.age:.2f}", f"{std:.4f}")
    return Record(name, split, {"age": lab.age}, age_std=std), row


def _finish_chalearn(root: Path, results: dict[tuple[str, str], list]) -> list[Record]:
    records = []
    for split, folder in CHALEARN_SPLIT.items():
        rows = results[("chalearn", split)]
        (root / folder).mkdir(parents=True, exist_ok=True)
        with open(root / f"{folder}_gt.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("image", "mean", "stdv"))
            w.writerows(row for _, row in rows)
        records += [r for r, _ in rows]
    return records


# --- CelebA ----------------------------------------------------------------------------------


def _celeba_attributes(lab: FaceLabels, look: FaceLook) -> dict[str, int]:
    """A plausible +-1 row: Male and Smiling are the labels; a few others follow the look."""
    on = {
        "Male": lab.gender == 1,
        "Smiling": lab.smile == 1,
        "Young": lab.age < 40,
        "Gray_Hair": lab.age > 60,
        "Bald": look.bald > 0.6,
        "No_Beard": look.beard == 0,
        "Wearing_Lipstick": look.lipstick,
        "Heavy_Makeup": look.lipstick,
        "Mouth_Slightly_Open": lab.smile == 1 or lab.emotion in (1, 2, 5),
    }
    return {a: 1 if on.get(a, False) else -1 for a in CELEBA_ATTRIBUTES}


def _celeba_face(
    root: Path,
    source: SyntheticSource,
    split: str,
    i: int,
    lab: FaceLabels,
    look: FaceLook,
    rng: np.random.Generator,
) -> tuple[Record, Any]:
    # CelebA numbers its images across splits: train first, then val, then test.
    offset = {"train": 0, "val": source.train, "test": source.train + source.val}[split]
    name = f"{offset + i + 1:06d}.jpg"
    _save_jpeg(
        render_face(lab, look, rng, CELEBA_SIZE, CELEBA_FACE), root / "img_align_celeba" / name
    )
    attrs = _celeba_attributes(lab, look)
    # CelebA pads each value to two characters: "000001.jpg -1  1  1 -1 ...".
    attr_row = name + " " + " ".join(f"{attrs[a]:2d}" for a in CELEBA_ATTRIBUTES)
    record = Record(name, split, {"gender": float(lab.gender), "smile": float(lab.smile)})
    return record, (attr_row, f"{name} {CELEBA_PARTITION[split]}")


def _finish_celeba(root: Path, results: dict[tuple[str, str], list]) -> list[Record]:
    rows = [row for split in SPLITS for row in results[("celeba", split)]]
    header = " ".join(CELEBA_ATTRIBUTES) + " "
    attr = [a for _, (a, _) in rows]
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(attr)), header, *attr]) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(p + "\n" for _, (_, p) in rows))
    return [r for r, _ in rows]


# --- FER2013 ---------------------------------------------------------------------------------


def _fer_face(
    root: Path,
    source: SyntheticSource,
    split: str,
    i: int,
    lab: FaceLabels,
    look: FaceLook,
    rng: np.random.Generator,
) -> tuple[Record, Any]:
    img = render_face(lab, look, rng, FER_SIZE, FER_FACE)
    gray = np.asarray(Image.fromarray(img).convert("L"))  # (48, 48) uint8
    row = (lab.emotion, " ".join(map(str, gray.ravel().tolist())), FER_USAGE[split])
    return Record(f"{split}/{i}", split, {"emotion": float(lab.emotion)}), row


def _finish_fer(root: Path, results: dict[tuple[str, str], list]) -> list[Record]:
    rows = [row for split in SPLITS for row in results[("fer2013", split)]]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("emotion", "pixels", "Usage"))
        w.writerows(row for _, row in rows)
    return [r for r, _ in rows]


# --- IMDB-WIKI -------------------------------------------------------------------------------


def _datenum(day: dt.date) -> int:
    """MATLAB serial date number of `day` (the inverse of REFERENCES.md's conversion)."""
    return day.toordinal() + 366


def _imdb_face(
    root: Path,
    source: SyntheticSource,
    split: str,
    i: int,
    lab: FaceLabels,
    look: FaceLook,
    rng: np.random.Generator,
) -> tuple[Record, Any]:
    u, cum = rng.random(), np.cumsum(list(IMDB_TRAPS.values()))
    trap = list(IMDB_TRAPS)[int(np.searchsorted(cum, u, side="right"))] if u < cum[-1] else None
    # The label is the age from dob and photo year: the apparent age plus noise.
    age = int(np.clip(round(lab.age + rng.normal(0, IMDB_AGE_NOISE)), 0, 100))
    year = int(rng.integers(1995, 2016))
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    birth = dt.date(year - age - (month >= 7), month, day)
    dob = float(rng.integers(1, 400)) if trap == drops.AGE_RANGE else float(_datenum(birth))
    gender = math.nan if trap == drops.GENDER_NAN else float(lab.gender)
    no_face = trap == drops.FACE_SCORE and rng.random() < 0.5
    if no_face:  # the detector found nothing: -Inf score, the box is the whole image
        score, box = -math.inf, (0.0, 0.0, float(IMDB_SIZE[0]), float(IMDB_SIZE[1]))
    else:
        low = trap == drops.FACE_SCORE
        score = float(rng.uniform(0.2, 0.95) if low else rng.uniform(1.5, 6.0))
        box = face_box(lab, look, IMDB_SIZE, IMDB_FACE)
    second, second_score = None, math.nan
    if trap == drops.SECOND_FACE:
        lab2 = draw_labels(rng)
        second = (lab2, draw_look(rng, lab2, source.nuisance))
        second_score = float(rng.uniform(0.5, 3.5))
    celeb = int(rng.integers(1, 10_000_000))
    path = f"{celeb % 100:02d}/nm{celeb:07d}_rm{i + 1:09d}_{birth.isoformat()}_{year}.jpg"
    img = render_face(lab, look, rng, IMDB_SIZE, IMDB_FACE, second_face=second, no_face=no_face)
    _save_jpeg(img, root / "imdb_crop" / path)
    x1, y1, x2, y2 = box
    fields = {
        "dob": dob,
        "photo_taken": year,
        "full_path": path,
        "gender": gender,
        "name": f"Person {celeb}",
        "face_location": np.array([[x1 + 1, y1 + 1, x2, y2]]),  # 1-based, like the original
        "face_score": score,
        "second_face_score": second_score,
        "celeb_id": celeb,
    }
    return Record(path, None, {"age": float(age), "gender": gender}, drop=trap), fields


def _finish_imdb(root: Path, rows: list[tuple[Record, Any]]) -> list[Record]:
    fields = {k: [f[k] for _, f in rows] for k in rows[0][1]} if rows else {}
    _save_imdb_mat(root / "imdb_crop" / "imdb.mat", fields)
    return [r for r, _ in rows]


def _cell(values: list[Any]) -> np.ndarray:
    """A MATLAB 1xN cell array."""
    out = np.empty((1, len(values)), dtype=object)
    for i, v in enumerate(values):
        out[0, i] = v
    return out


def _save_imdb_mat(path: Path, f: dict[str, list[Any]]) -> None:
    """Save like the published imdb.mat: a 1x1 struct `imdb` whose fields are 1xN."""

    def row(values: list[Any]) -> np.ndarray:
        return np.asarray(values, float).reshape(1, -1)

    meta = {
        "dob": row(f.get("dob", [])),
        "photo_taken": row(f.get("photo_taken", [])),
        "full_path": _cell(f.get("full_path", [])),
        "gender": row(f.get("gender", [])),
        "name": _cell(f.get("name", [])),
        "face_location": _cell(f.get("face_location", [])),
        "face_score": row(f.get("face_score", [])),
        "second_face_score": row(f.get("second_face_score", [])),
        "celeb_names": _cell(sorted(set(f.get("name", [])))),
        "celeb_id": row(f.get("celeb_id", [])),
    }
    import scipy.io  # here, not at the top: every spawned renderer would import it for nothing

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"imdb": meta})
    # The header's 116 text bytes hold a creation time; a fixed text makes the bytes
    # depend on the seed alone.
    with open(path, "r+b") as fh:
        fh.write(_MAT_HEADER.ljust(116))


_ONE_FACE = {
    "chalearn": _chalearn_face,
    "celeba": _celeba_face,
    "fer2013": _fer_face,
    "imdb_wiki": _imdb_face,
}
