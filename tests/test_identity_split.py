"""IMDB-WIKI's held-out splits are drawn by person: nobody appears in two splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from mtl_data.manifest import grouped_split, seeded_split

from .hostile import cell  # a MATLAB cell array, as scipy.io writes one
from .test_data_loaders import SPLITS, imdb_entry, jpeg, load_all


def write_db(root: Path, db: str, entries: list[dict]) -> None:
    """imdb.mat (with celeb_id) or wiki.mat (names only), shaped like the published ones."""

    def row(key):
        return np.array([[e[key] for e in entries]], float)

    meta = {
        "dob": row("dob"),
        "photo_taken": row("year"),
        "full_path": cell([e["path"] for e in entries]),
        "gender": row("gender"),
        # WIKI leaves some names empty (a 0-length char array in MATLAB).
        "name": cell([np.array([e["who"]]) if e["who"] else np.zeros(0) for e in entries]),
        "face_location": cell([np.array([e["box"]], float) for e in entries]),
        "face_score": row("score"),
        "second_face_score": row("second"),
    }
    if db == "imdb":
        meta["celeb_id"] = np.array([[float(e["who"] or "nan") for e in entries]])
    crop = root / f"{db}_crop"
    crop.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(crop / f"{db}.mat", {db: meta})
    for e in entries:
        jpeg(crop / e["path"], (40, 40))


def people(n_people: int, db: str) -> list[dict]:
    """Person k has k % 7 + 1 photos; the file name starts with the person."""
    entries = []
    for k in range(n_people):
        who = str(k + 1) if db == "imdb" else f"Person {k + 1}"
        for j in range(k % 7 + 1):
            entries.append({**imdb_entry(f"{k % 10:02d}/p{k + 1}_{j}.jpg"), "who": who})
    return entries


@pytest.mark.parametrize("db", ["imdb", "wiki"])
def test_no_person_is_in_two_splits(tmp_path, db):
    root = tmp_path / db
    entries = people(30, db)
    entries.append({**imdb_entry("99/anon_0.jpg"), "who": ""})  # no identity: its own person
    write_db(root, db, entries)
    source = {"kind": "imdb_wiki", "root": str(root), "db": db, "val_fraction": 0.15}
    splits = load_all({**source, "test_fraction": 0.2}, tmp_path, "pretrain")
    person = {s: {n.split("/")[1].split("_")[0] for n in splits[s].names()} for s in SPLITS}
    assert all(person[s] for s in SPLITS)
    assert not person["train"] & person["val"]
    assert not person["train"] & person["test"]
    assert not person["val"] & person["test"]
    n = len(entries)
    assert sum(len(splits[s]) for s in SPLITS) == n
    assert round(0.2 * n) <= len(splits["test"]) < round(0.2 * n) + 7  # by at most one person


def test_grouped_split_keeps_groups_whole_and_counts_images():
    groups = [f"g{i // 5}" for i in range(100)]  # 20 people, 5 images each
    split = grouped_split(groups, 0.1, 0.2, seed=3)
    for g in set(groups):
        assert len({split[i] for i, x in enumerate(groups) if x == g}) == 1
    assert [int((split == s).sum()) for s in SPLITS] == [70, 10, 20]
    assert list(split) == list(grouped_split(groups, 0.1, 0.2, seed=3))
    assert list(split) != list(grouped_split(groups, 0.1, 0.2, seed=4))


def test_grouped_split_of_singletons_sizes_splits_like_the_per_image_split():
    split = grouped_split([str(i) for i in range(41)], 0.1, 0.25, seed=0)
    per_image = seeded_split(41, 0.1, 0.25, seed=0)
    assert [int((split == s).sum()) for s in SPLITS] == [
        int((per_image == s).sum()) for s in SPLITS
    ]


def test_caches_split_per_image_are_not_reused(tmp_path, monkeypatch):
    from mtl_data.cache import cache_key
    from mtl_data.loaders import get_loader
    from mtl_data.source import resolve_source

    root = tmp_path / "imdb"
    write_db(root, "imdb", people(3, "imdb"))
    src = resolve_source({"kind": "imdb_wiki", "root": str(root)}, "pretrain", tmp_path)
    now = cache_key(src, 16)
    monkeypatch.setattr(type(get_loader("imdb_wiki")), "version", 1)  # before identity splits
    assert cache_key(src, 16) != now
