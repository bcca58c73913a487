"""Tiny hostile datasets and helpers for tests/test_faults.py: real files in tmp_path."""

from __future__ import annotations

import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from .conftest import CliResult

N_IMDB = 40  # entries in a written .mat: enough for every seeded split to get some


def jpeg(path: Path, size: tuple[int, int] = (24, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 60, 30)).save(path, "JPEG")
    return path


def huge_png_header(path: Path, side: int = 20_000) -> Path:
    """A PNG whose header announces side x side pixels, with almost no data behind it:
    reading the header is cheap, decoding it would not be (and fails)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    )
    return path


def csv_source(root: Path, extra: list[str], good: int = 2) -> str:
    """A `csv` source: `good` usable images per split plus the `extra` rows (in train)."""
    rows = ["image,gender,smile,split"]
    for split in ("train", "val", "test"):
        for i in range(good):
            jpeg(root / f"{split}{i}.jpg")
            rows.append(f"{split}{i}.jpg,1,0,{split}")
    (root / "labels.csv").write_text("\n".join(rows + extra) + "\n")
    return f"csv={root}"


@contextmanager
def unblock_fifo_after(path: Path, seconds: float = 15.0) -> Iterator[None]:
    """If something still blocks opening the FIFO at `path` after `seconds`, open its other
    end so the test fails on its assertions instead of hanging."""
    done = threading.Event()

    def release() -> None:
        if done.wait(seconds):
            return
        while not done.is_set():
            with suppress(OSError):  # no reader (yet)
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            done.wait(0.2)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def dropped(r: CliResult, reason: str) -> int:
    """How many samples `data check` counted under `reason`, over all splits."""
    assert r.code == 0, r.err
    total = 0
    for line in r.out.splitlines():
        words = line.replace(",", " ").split()
        total += sum(int(words[i + 1]) for i, w in enumerate(words[:-1]) if w == reason)
    return total


def usable(r: CliResult) -> dict[str, int]:
    """Usable samples per split, from the first table of `data check` (one source)."""
    out = {}
    for line in r.out.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in ("train", "val", "test") and words[1].isdigit():
            out.setdefault(words[0], int(words[1]))
    return out


def outside_file(tmp_path: Path) -> Path:
    return jpeg(tmp_path / "outside" / "secret.jpg")


def fer_row(usage: str, pixels: str | None = None) -> str:
    return f"3,{pixels or ' '.join(['128'] * 2304)},{usage}"


def write_fer(root: Path, extra: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rows = ["emotion,pixels,Usage"]
    rows += [fer_row(u) for u in ("Training", "PublicTest", "PrivateTest")]
    (root / "fer2013.csv").write_text("\n".join(rows + extra) + "\n")


NOT_UTF8 = "caf\u00e9".encode("latin-1")  # b"caf\xe9": a Latin-1 file


def latin1_chalearn(root: Path) -> Path:
    for folder in ("train", "valid", "test"):
        (root / folder).mkdir(parents=True)
        (root / f"{folder}_gt.csv").write_text("image,mean,stdv\na.jpg,30,3\n")
    (root / "valid_gt.csv").write_bytes(b"image,mean,stdv\n" + NOT_UTF8 + b".jpg,30,3\n")
    return root / "valid_gt.csv"


def latin1_celeba(root: Path) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "list_eval_partition.txt").write_text("a.jpg 0\n")
    (root / "list_attr_celeba.txt").write_bytes(b"1\nMale Smiling\n" + NOT_UTF8 + b".jpg 1 1\n")
    return root / "list_attr_celeba.txt"


def latin1_fer(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "fer2013.csv").write_bytes(b"emotion,pixels,Usage\n3,1 2," + NOT_UTF8 + b"\n")
    return root / "fer2013.csv"


def latin1_csv(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "labels.csv").write_bytes(b"image,gender,smile,split\n" + NOT_UTF8 + b",1,1,train\n")
    return root / "labels.csv"


def latin1_genki(root: Path) -> Path:
    (root / "files").mkdir(parents=True)
    (root / "labels.txt").write_bytes(b"1 0 0 0\n" + NOT_UTF8 + b"\n")
    return root / "labels.txt"


def cell(values: list) -> np.ndarray:
    out = np.empty((1, len(values)), dtype=object)
    for i, v in enumerate(values):
        out[0, i] = v
    return out


def write_mat(crop: Path, db: str, n: int = N_IMDB, **fields) -> None:
    crop.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        jpeg(crop / "00" / f"{i}.jpg", (40, 40))
    meta = {
        "dob": np.full((1, n), float(723671)),  # 1981-05-05
        "photo_taken": np.full((1, n), 2009.0),
        "full_path": cell([f"00/{i}.jpg" for i in range(n)]),
        "gender": np.ones((1, n)),
        "face_location": cell([np.array([[5.0, 5.0, 30.0, 30.0]]) for _ in range(n)]),
        "face_score": np.full((1, n), 3.0),
        "second_face_score": np.full((1, n), math.nan),
        "celeb_id": np.arange(1.0, n + 1).reshape(1, -1),  # one person each (IMDB)
        "name": cell([f"person {i}" for i in range(n)]),  # the same, as WIKI names them
        **fields,
    }
    scipy.io.savemat(crop / f"{db}.mat", {db: meta})


# Each maker adds one hostile row (and its file) to a csv source and returns the row.
ROW_FAULTS: dict[str, tuple[str, Callable[[Path, Path], str]]] = {
    "dotdot": ("unsafe_path", lambda root, tmp: (outside_file(tmp), "../outside/secret.jpg")[1]),
    "absolute": ("unsafe_path", lambda root, tmp: str(outside_file(tmp))),
    "symlink-out": (
        "unsafe_path",
        lambda root, tmp: (os.symlink(outside_file(tmp), root / "link.jpg"), "link.jpg")[1],
    ),
    "fifo": ("not_a_file", lambda root, tmp: (os.mkfifo(root / "pipe.jpg"), "pipe.jpg")[1]),
    "folder": ("not_a_file", lambda root, tmp: ((root / "dir.jpg").mkdir(), "dir.jpg")[1]),
    "huge-image": ("too_large", lambda root, tmp: huge_png_header(root / "huge.png").name),
}
