"""Loaders on tiny fixtures in each real format, each holding the format's traps.

Every test asserts how many samples each reason dropped, through the real path:
resolve_source (the existence checks), the loader, then the decoded cache.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from mtl_core.errors import DataError
from mtl_core.sources import SOURCE_TASKS
from mtl_data.cache import load_split
from mtl_data.loaders import get_loader, list_loaders
from mtl_data.loaders.imdb_wiki import imdb_age
from mtl_data.source import resolve_source

from .hostile import cell  # a MATLAB cell array, as scipy.io writes one

SIZE = 16  # decoded image side for these tests


def jpeg(path: Path, size: tuple[int, int] = (24, 24), color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")


def corrupt(path: Path) -> None:
    """A file named .jpg that is not an image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a JPEG" * 10)


def truncated(path: Path) -> None:
    """A JPEG cut off half-way: its header parses, its data does not decode."""
    jpeg(path, (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def load_all(source: dict, tmp_path: Path, role: str) -> dict:
    src = resolve_source(source, role, tmp_path / "cache", progress=False)
    return {s: load_split(src, s, SIZE, tmp_path / "cache", progress=False) for s in SPLITS}


SPLITS = ("train", "val", "test")


def total_dropped(splits: dict) -> Counter:
    out: Counter = Counter()
    for split in splits.values():
        out.update(split.stats["dropped"])
    return out


def by_name(splits: dict, task: str) -> dict[str, float]:
    return {
        n: float(v)
        for split in splits.values()
        for n, v in zip(split.names(), split.labels[task], strict=True)
    }


def test_every_real_kind_has_a_loader_and_unknown_kinds_fail_loudly() -> None:
    assert set(list_loaders()) == set(SOURCE_TASKS) - {"synthetic"}
    for kind in list_loaders():
        assert get_loader(kind).kind == kind  # the registry names the right class
    with pytest.raises(KeyError, match="unknown data source kind 'nope'; known: synthetic"):
        get_loader("nope")


# --- IMDB-WIKI -------------------------------------------------------------------------------


def datenum(year: int, month: int, day: int) -> float:
    return float(dt.date(year, month, day).toordinal() + 366)


def test_imdb_age_follows_the_reference_formula() -> None:
    assert imdb_age(datenum(1981, 5, 5), 2009) == 28  # born before July: full years
    assert imdb_age(datenum(1981, 7, 1), 2009) == 27  # born on/after 1 July: one less
    assert imdb_age(5.0, 2009) == 2008  # dob near the datenum origin: year 1
    assert math.isnan(imdb_age(math.nan, 2009))
    assert math.isnan(imdb_age(1e12, 2009))  # beyond the calendar


def write_imdb(root: Path, entries: list[dict]) -> None:
    """An imdb.mat shaped like the published one: a 1x1 struct of 1xN fields."""
    crop = root / "imdb_crop"
    crop.mkdir(parents=True, exist_ok=True)

    def row(key):
        return np.array([[e[key] for e in entries]], float)

    meta = {
        "dob": row("dob"),
        "photo_taken": row("year"),
        "full_path": cell([e["path"] for e in entries]),
        "gender": row("gender"),
        "name": cell([f"P{i}" for i in range(len(entries))]),
        "face_location": cell([np.array([e["box"]], float) for e in entries]),
        "face_score": row("score"),
        "second_face_score": row("second"),
        "celeb_names": cell(["P"]),
        "celeb_id": np.arange(1.0, len(entries) + 1).reshape(1, -1),  # one person each
    }
    scipy.io.savemat(crop / "imdb.mat", {"imdb": meta})


def imdb_entry(path: str, **kw) -> dict:
    base = {
        "path": path,
        "dob": datenum(1981, 5, 5),
        "year": 2009,
        "gender": 1.0,
        "score": 3.0,
        "second": math.nan,
        "box": [11, 11, 30, 30],  # 1-based x1, y1, x2, y2
    }
    return {**base, **kw}


def test_imdb_wiki_cleaning_counts_each_filter(tmp_path: Path) -> None:
    root = tmp_path / "imdb"
    entries = [
        imdb_entry("01/clean_male.jpg"),
        imdb_entry("01/clean_female.jpg", gender=0.0, dob=datenum(1990, 8, 1), year=2010),
        imdb_entry("01/second_zero.jpg", second=0.0),  # finite but not > 0: kept
        imdb_entry("02/nan_gender.jpg", gender=math.nan),
        imdb_entry("02/inf_score.jpg", score=math.inf, box=[1, 1, 100, 100]),
        imdb_entry("02/no_face.jpg", score=-math.inf),
        imdb_entry("02/low_score.jpg", score=0.5),
        imdb_entry("02/two_faces.jpg", second=1.2),
        imdb_entry("03/dob_origin.jpg", dob=5.0),
        imdb_entry("03/born_later.jpg", dob=datenum(2000, 1, 1), year=1990),
        imdb_entry("03/inf_and_nan.jpg", score=math.inf, gender=math.nan),  # first filter wins
        imdb_entry("04/corrupt.jpg"),
        imdb_entry("04/missing.jpg"),
    ]
    write_imdb(root, entries)
    for e in entries:
        if e["path"] == "04/corrupt.jpg":
            truncated(root / "imdb_crop" / e["path"])
        elif e["path"] != "04/missing.jpg":
            # The face box (pixels 10..30) is red, the rest blue: the crop must follow it.
            img = np.zeros((100, 100, 3), np.uint8)
            img[...] = (0, 0, 255)
            img[10:30, 10:30] = (255, 0, 0)
            (root / "imdb_crop" / e["path"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / "imdb_crop" / e["path"], quality=95)
    source = {"kind": "imdb_wiki", "root": str(root), "val_fraction": 0.2, "test_fraction": 0.2}
    splits = load_all(source, tmp_path, "pretrain")
    assert total_dropped(splits) == {
        "face_score": 4,
        "second_face": 1,
        "age_range": 2,
        "gender_nan": 1,
        "corrupt_image": 1,
        "missing_file": 1,
    }
    assert by_name(splits, "age") == {
        "01/clean_male.jpg": 28.0,
        "01/clean_female.jpg": 19.0,
        "01/second_zero.jpg": 28.0,
    }
    assert by_name(splits, "gender") == {
        "01/clean_male.jpg": 1.0,
        "01/clean_female.jpg": 0.0,
        "01/second_zero.jpg": 1.0,
    }
    for split in splits.values():
        assert np.isnan(split.labels["emotion"]).all() and np.isnan(split.age_std).all()
        for img in split.images:
            assert img[SIZE // 2, SIZE // 2, 0] > 200 and img[SIZE // 2, SIZE // 2, 2] < 60


def test_imdb_wiki_split_is_seeded_and_max_images_caps(tmp_path: Path) -> None:
    root = tmp_path / "imdb"
    entries = [imdb_entry(f"{i % 3:02d}/{i}.jpg") for i in range(40)]
    write_imdb(root, entries)
    for e in entries:
        jpeg(root / "imdb_crop" / e["path"], (40, 40))
    base = {"kind": "imdb_wiki", "root": str(root), "val_fraction": 0.1, "test_fraction": 0.25}
    a = load_all(base, tmp_path / "a", "age")
    b = load_all(base, tmp_path / "b", "age")
    assert [len(a[s]) for s in SPLITS] == [26, 4, 10]
    assert all(a[s].names() == b[s].names() for s in SPLITS)
    c = load_all({**base, "split_seed": 1}, tmp_path / "c", "age")
    assert a["test"].names() != c["test"].names()
    capped = load_all({**base, "max_images": 10}, tmp_path / "d", "age")
    assert sum(len(s) for s in capped.values()) == 10
    assert total_dropped(capped) == {"over_max_images": 30}


# --- ChaLearn --------------------------------------------------------------------------------


def write_chalearn(root: Path, sep: str = ",") -> None:
    rows = {
        "train": [("a.jpg", "20.5", "3.1"), ("b.jpg", "61", "5"), ("c.jpg", "abc", "1"),
                  ("gone.jpg", "30", "2"), ("bad.jpg", "40", "2"), ("d.jpg", "7.25", "")],
        "valid": [("e.jpg", "33", "4")],
        "test": [("f.jpg", "44", "6"), ("g.jpg", "-3", "1")],
    }  # fmt: skip
    for folder, items in rows.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        lines = [sep.join(("image", "mean", "stdv"))] + [sep.join(r) for r in items]
        (root / f"{folder}_gt.csv").write_text("\n".join(lines) + "\n")
        for name, *_ in items:
            if name == "bad.jpg":
                corrupt(root / folder / name)
            elif name != "gone.jpg":
                jpeg(root / folder / name, (30, 40))


@pytest.mark.parametrize("sep", [",", ";"])
def test_chalearn_keeps_mean_and_stdv_and_counts_drops(tmp_path: Path, sep: str) -> None:
    write_chalearn(tmp_path / "chalearn", sep)
    splits = load_all({"kind": "chalearn", "root": str(tmp_path / "chalearn")}, tmp_path, "age")
    assert [len(splits[s]) for s in SPLITS] == [3, 1, 1]
    assert splits["train"].stats["dropped"] == {
        "bad_label": 1,
        "missing_file": 1,
        "corrupt_image": 1,
    }
    assert splits["test"].stats["dropped"] == {"bad_label": 1}  # a negative mean
    assert by_name(splits, "age") == {
        "a.jpg": 20.5,
        "b.jpg": 61.0,
        "d.jpg": 7.25,
        "e.jpg": 33.0,
        "f.jpg": 44.0,
    }
    train = splits["train"]
    np.testing.assert_allclose(train.age_std[:2], [3.1, 5.0], rtol=1e-6)
    assert math.isnan(train.age_std[2])  # empty stdv: unknown, not guessed
    assert train.images.shape == (3, SIZE, SIZE, 3) and train.images.dtype == np.uint8
    assert isinstance(train.images, np.memmap)


def test_chalearn_missing_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    write_chalearn(tmp_path / "chalearn")
    (tmp_path / "chalearn" / "valid_gt.csv").unlink()
    with pytest.raises(DataError, match=r"valid_gt\.csv"):
        resolve_source({"kind": "chalearn", "root": str(tmp_path / "chalearn")}, "age", tmp_path)
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nowhere"))):
        resolve_source({"kind": "fer2013", "root": str(tmp_path / "nowhere")}, "emotion", tmp_path)


def test_a_header_without_the_expected_columns_names_the_file(tmp_path: Path) -> None:
    write_chalearn(tmp_path / "chalearn")
    (tmp_path / "chalearn" / "test_gt.csv").write_text("file,age\nf.jpg,44\n")
    src = resolve_source({"kind": "chalearn", "root": str(tmp_path / "chalearn")}, "age", tmp_path)
    with pytest.raises(DataError, match=r"test_gt\.csv.*lacks column 'image'"):
        load_split(src, "train", SIZE, tmp_path / "cache", progress=False)


# --- FER2013 ---------------------------------------------------------------------------------


def test_fer2013_maps_usage_and_drops_bad_rows(tmp_path: Path) -> None:
    root = tmp_path / "fer"
    root.mkdir()
    rng = np.random.default_rng(0)

    def pixels(n: int = 2304, high: int = 256) -> str:
        return " ".join(map(str, rng.integers(0, high, n)))

    rows = [
        (3, pixels(), "Training"),
        (0, pixels(), "Training"),
        (6, pixels(), "Training"),
        (2, pixels(2303), "Training"),  # one pixel short
        (2, pixels() + " 300", "Training"),  # 2305 values
        (4, "0 " * 2303 + "256", "Training"),  # a value above 255
        (9, pixels(), "Training"),  # no such emotion
        (5, pixels(), "PublicTest"),
        (1, pixels(), "PrivateTest"),
        (1, pixels(), "Elsewhere"),
    ]
    text = "emotion,pixels,Usage\n" + "".join(f'{e},"{p}",{u}\n' for e, p, u in rows)
    (root / "fer2013.csv").write_text(text)
    splits = load_all({"kind": "fer2013", "root": str(root)}, tmp_path, "emotion")
    assert [len(splits[s]) for s in SPLITS] == [3, 1, 1]
    assert splits["train"].stats["dropped"] == {"bad_pixels": 3, "bad_label": 1, "bad_split": 1}
    assert splits["train"].labels["emotion"].tolist() == [3.0, 0.0, 6.0]
    assert splits["val"].labels["emotion"].tolist() == [5.0]
    assert splits["test"].labels["emotion"].tolist() == [1.0]
    img = splits["train"].images[0]  # grayscale, replicated to three equal channels
    assert img.shape == (SIZE, SIZE, 3)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()


# --- CelebA ----------------------------------------------------------------------------------


def test_celeba_looks_attributes_up_by_name(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    names = [f"Attr_{i}" for i in range(38)]
    names.insert(0, "Smiling")  # not where CelebA has it (31) ...
    names.insert(3, "Male")  # ... nor Male (20)
    assert len(names) == 40
    images = root / "img_align_celeba"

    def row(name: str, male: int, smiling: int, sep: str = " ") -> str:
        values = [-1] * 40
        values[names.index("Male")] = male
        values[names.index("Smiling")] = smiling
        return name + sep + sep.join(f"{v:2d}" for v in values)

    lines = [
        row("000001.jpg", 1, -1),
        row("000002.jpg", -1, 1, sep="   "),  # variable spaces
        row("000003.jpg", 1, 1),
        row("000004.jpg", -1, -1),  # not in the partition file
        row("000005.jpg", 1, -1).replace(" 1", " 0", 1),  # a value that is not +-1
        row("000006.jpg", 1, 1),  # missing file
        row("000007.jpg", -1, 1),  # corrupt file
        row("000008.jpg", -1, -1),
    ]
    images.mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text(
        "\n".join([str(len(lines)), " ".join(names) + " ", *lines]) + "\n"
    )
    partition = {1: 0, 2: 0, 3: 1, 5: 0, 6: 0, 7: 0, 8: 2}
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{i:06d}.jpg {p}\n" for i, p in partition.items())
    )
    for i in (1, 2, 3, 4, 5, 8):
        jpeg(images / f"{i:06d}.jpg", (20, 26))
    corrupt(images / "000007.jpg")
    splits = load_all({"kind": "celeba", "root": str(root)}, tmp_path, "gender")
    assert [len(splits[s]) for s in SPLITS] == [2, 1, 1]
    assert total_dropped(splits) == {
        "bad_split": 1,
        "bad_label": 1,
        "missing_file": 1,
        "corrupt_image": 1,
    }
    assert by_name(splits, "gender") == {
        "000001.jpg": 1.0,
        "000002.jpg": 0.0,
        "000003.jpg": 1.0,
        "000008.jpg": 0.0,
    }
    assert by_name(splits, "smile") == {
        "000001.jpg": 0.0,
        "000002.jpg": 1.0,
        "000003.jpg": 1.0,
        "000008.jpg": 0.0,
    }


def test_celeba_without_the_attribute_fails_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text("1\nSmiling Young\n000001.jpg 1 1\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    src = resolve_source({"kind": "celeba", "root": str(root)}, "smile", tmp_path)
    with pytest.raises(DataError, match="no attribute 'Male'"):
        load_split(src, "train", SIZE, tmp_path / "cache", progress=False)


# --- CSV and GENKI-4K ------------------------------------------------------------------------


def test_csv_masks_missing_labels_and_counts_drops(tmp_path: Path) -> None:
    root = tmp_path / "csv"
    rows = [
        ("img/a.jpg", "1", "0", "train"),
        ("img/b.jpg", "", "1", "train"),  # no gender label: kept, masked
        ("img/c.jpg", "0", "NA", "valid"),
        ("img/d.jpg", "", "", "train"),  # no label at all
        ("img/e.jpg", "x", "1", "train"),  # unparsable
        ("img/f.jpg", "1", "1", "holdout"),  # unknown split
        ("img/gone.jpg", "1", "1", "test"),
        ("img/g.jpg", "0", "0", "test"),
    ]
    for name, *_ in rows:
        if "gone" not in name:
            jpeg(root / name)
    text = "image,gender,smile,split\n" + "".join(",".join(r) + "\n" for r in rows)
    (root / "faces.csv").write_text(text)
    splits = load_all({"kind": "csv", "root": str(root), "file": "faces.csv"}, tmp_path, "smile")
    assert [len(splits[s]) for s in SPLITS] == [2, 1, 1]
    assert total_dropped(splits) == {
        "no_labels": 1,
        "bad_label": 1,
        "bad_split": 1,
        "missing_file": 1,
    }
    gender = by_name(splits, "gender")
    assert gender["img/a.jpg"] == 1.0 and math.isnan(gender["img/b.jpg"])
    assert math.isnan(by_name(splits, "smile")["img/c.jpg"])


def test_genki_reads_smile_with_a_seeded_split(tmp_path: Path) -> None:
    root = tmp_path / "genki"
    lines = [f"{i % 2} 0.1 -0.2 0.0" for i in range(20)]
    lines[4] = "maybe 0 0 0"
    (root / "files").mkdir(parents=True)
    (root / "labels.txt").write_text("\n".join(lines) + "\n")
    for i in range(20):
        if i != 7:
            jpeg(root / "files" / f"file{i + 1:04d}.jpg")
    source = {"kind": "genki", "root": str(root), "val_fraction": 0.1, "test_fraction": 0.2}
    splits = load_all(source, tmp_path / "a", "smile")
    assert sum(len(s) for s in splits.values()) == 18
    assert total_dropped(splits) == {"bad_label": 1, "missing_file": 1}
    smile = by_name(splits, "smile")
    assert smile["files/file0001.jpg"] == 0.0 and smile["files/file0002.jpg"] == 1.0
    again = load_all(source, tmp_path / "b", "smile")
    assert all(splits[s].names() == again[s].names() for s in SPLITS)


def test_an_unclosed_quote_is_an_error_even_past_the_field_limit(tmp_path):
    # The swallowed rows hit the csv field limit first, and were counted as one over-long
    # row (FER2013's path), the thousands of rows in it in no count.
    from mtl_data.loaders.tabular import read_rows

    path = tmp_path / "labels.csv"
    rows = [f"img{i}.jpg,{'7' * 100}" for i in range(3000)]
    rows[10] = 'img10.jpg,"5'
    path.write_text("file,age\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="line 12: a quoted field runs to line"):
        list(read_rows(path, ["file", "age"], too_long=lambda: None))
