"""The decoded cache: built once, then only read; keyed by contents; safe to build from two
processes at once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtl_data.atomic import build_once, is_built
from mtl_data.cache import build_cache, cache_path, load_split
from mtl_data.decode import square_region
from mtl_data.loaders import get_loader
from mtl_data.source import ResolvedSource

REPO = Path(__file__).resolve().parents[1]


def make_chalearn(root: Path, n: int = 30, side: int = 48) -> ResolvedSource:
    """A small ChaLearn-format folder; image i is grey level 8 i (mod 256), its age i + 0.5."""
    for folder, count in (("train", n), ("valid", 4), ("test", 4)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        lines = ["image,mean,stdv"]
        for i in range(count):
            Image.new("RGB", (side, side), ((i * 8) % 256,) * 3).save(root / folder / f"{i}.jpg")
            lines.append(f"{i}.jpg,{i % 100 + 0.5},{1 + i / 10}")
        (root / f"{folder}_gt.csv").write_text("\n".join(lines) + "\n")
    return ResolvedSource("chalearn", str(root))


def test_build_then_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_chalearn(tmp_path / "data")
    cache = tmp_path / "cache"
    first = load_split(src, "train", 16, cache, progress=False)
    assert first.images.shape == (30, 16, 16, 3) and isinstance(first.images, np.memmap)
    # Image i is grey level 8 i and its label is i + 0.5: rows and labels stay aligned.
    np.testing.assert_allclose(first.images[:, 8, 8, 0], np.arange(30) * 8, atol=2)
    np.testing.assert_allclose(first.labels["age"], np.arange(30) + 0.5)
    assert first.names() == [f"{i}.jpg" for i in range(30)]

    def no_reading(*args, **kwargs):
        raise AssertionError("the loader ran although the cache exists")

    monkeypatch.setattr(get_loader("chalearn"), "read", no_reading)
    again = load_split(src, "train", 16, cache, progress=False)
    np.testing.assert_array_equal(again.images, first.images)
    assert load_split(src, "val", 16, cache, progress=False).stats["usable"] == 4


def test_key_follows_label_contents_options_and_size(tmp_path: Path) -> None:
    src = make_chalearn(tmp_path / "data")
    cache = tmp_path / "cache"
    path = cache_path(src, 16, cache)
    assert cache_path(src, 32, cache) != path
    csv = tmp_path / "data" / "train_gt.csv"
    text = csv.read_text()
    time.sleep(0.01)
    csv.write_text(text)  # same contents, new mtime: same cache
    assert cache_path(src, 16, cache) == path
    csv.write_text(text.replace("0.jpg,0.5", "0.jpg,9.5"))
    assert cache_path(src, 16, cache) != path
    other = ResolvedSource("chalearn", src.root, (("extra", 1),))
    assert cache_path(other, 16, cache) != cache_path(src, 16, cache)


def test_dropped_rows_are_cut_from_a_valid_npy(tmp_path: Path) -> None:
    src = make_chalearn(tmp_path / "data", n=10)
    (tmp_path / "data" / "train" / "3.jpg").unlink()
    (tmp_path / "data" / "train" / "7.jpg").write_bytes(b"garbage")
    folder = build_cache(src, 16, tmp_path / "cache", progress=False, workers=2)
    arr = np.load(folder / "train.npy")  # a full, non-mmap load checks the file's length
    assert arr.shape == (8, 16, 16, 3)
    split = load_split(src, "train", 16, tmp_path / "cache", progress=False)
    assert split.stats == {"usable": 8, "dropped": {"corrupt_image": 1, "missing_file": 1}}
    assert split.names() == [f"{i}.jpg" for i in (0, 1, 2, 4, 5, 6, 8, 9)]
    np.testing.assert_allclose(arr[:, 0, 0, 0], [8 * i for i in (0, 1, 2, 4, 5, 6, 8, 9)], atol=2)


CONCURRENT = """
import contextlib, hashlib, json, sys, time
from pathlib import Path
import mtl_data.atomic
from mtl_data.cache import load_split
from mtl_data.source import ResolvedSource

root, cache, go, lock = sys.argv[1:5]
if lock == "nolock":  # as on a file system where locks do not hold: only the rename protects
    mtl_data.atomic.FileLock = lambda path: contextlib.nullcontext()
while not Path(go).exists():
    time.sleep(0.002)
out = {}
for split in ("train", "val", "test"):
    s = load_split(ResolvedSource("chalearn", root), split, 24, Path(cache), progress=False)
    out[split] = [hashlib.sha256(s.images.tobytes()).hexdigest(), s.labels["age"].tolist(), s.stats]
print(json.dumps(out))
"""


@pytest.mark.parametrize("lock", ["lock", "nolock"])
def test_two_processes_building_the_same_cache_end_identical_and_valid(
    tmp_path: Path, lock: str
) -> None:
    src = make_chalearn(tmp_path / "data", n=300, side=96)
    cache, go = tmp_path / "cache", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, src.root, str(cache), str(go), lock],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # both are importing; then they start building at the same moment
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert results[0] == results[1]
    assert results[0]["train"][2] == {"usable": 300, "dropped": {}}
    built = [p for p in (cache / "decoded").iterdir() if p.is_dir()]
    assert len(built) == 1 and is_built(built[0])  # no second copy, no temporary left
    # The cache the two wrote is the one a fresh decode gives.
    fresh = load_split(src, "train", 24, tmp_path / "fresh", progress=False)
    assert hashlib.sha256(fresh.images.tobytes()).hexdigest() == results[0]["train"][0]


def test_build_once_leaves_nothing_after_a_failure_and_ignores_strays(tmp_path: Path) -> None:
    target = tmp_path / "out"

    def fail(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_once(target, fail)
    assert not target.exists() and not list(tmp_path.glob(".out.tmp-*"))
    target.mkdir()  # a stray, incomplete folder (not written by build_once)
    (target / "junk").write_text("x")
    calls = []
    build_once(target, lambda tmp: calls.append((tmp / "a").write_text("ok")))
    build_once(target, lambda tmp: calls.append("again"))
    assert len(calls) == 1 and (target / "a").read_text() == "ok"
    assert not (target / "junk").exists()


def test_square_region_uses_the_box_with_margin_and_stays_inside() -> None:
    assert square_region(100, 80, None) == (10.0, 0.0, 90.0, 80.0)  # centred square
    assert square_region(100, 100, (40, 40, 60, 60)) == (36.0, 36.0, 64.0, 64.0)  # 20 * 1.4
    assert square_region(100, 100, (0, 0, 20, 20)) == (0.0, 0.0, 28.0, 28.0)  # shifted inside
    assert square_region(50, 50, (-10, -10, 200, 200)) == (0.0, 0.0, 50.0, 50.0)  # shrunk
    nan = float("nan")
    assert square_region(60, 40, (nan, nan, nan, nan)) == (10.0, 0.0, 50.0, 40.0)
