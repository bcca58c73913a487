"""Decode one image into the cache's format: the face's square, resized, RGB uint8.

Pure PIL and numpy (no torch), so that it is cheap to call from worker threads: PIL
releases the GIL while it decodes and resizes, so threads use every core.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from functools import lru_cache

import numpy as np
from PIL import Image

import mtl_data.drops as drops

BOX_MARGIN = 0.2  # context added on each side of a face box, as a fraction of its size
RESAMPLE = Image.Resampling.BICUBIC  # PIL's resize antialiases when it shrinks
# Larger images are refused from their header, before decoding: 64 MP is far beyond any
# face photo and below PIL's own limit (~89 MP, which only warns up to twice that).
MAX_PIXELS = 64_000_000
# decode_file counts such images as drops.TOO_LARGE; PIL's warning would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def square_region(
    width: int, height: int, box: tuple[float, float, float, float] | np.ndarray | None
) -> tuple[float, float, float, float]:
    """The square (left, top, right, bottom) to cut from a width x height image, in pixels.

    With a face box [x1, y1, x2, y2] (0-based edges): a square of side
    max(x2 - x1, y2 - y1) * (1 + 2 * BOX_MARGIN) centred on the box. Without one (None or
    NaN): the largest centred square. Either way the square is shrunk to fit and shifted
    into the image, so nothing is padded and nothing is stretched.
    """
    if box is None or not all(math.isfinite(v) for v in box):
        cx, cy, side = width / 2, height / 2, min(width, height)
    else:
        x1, y1, x2, y2 = (float(v) for v in box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * BOX_MARGIN)
    side = min(side, width, height)
    left = min(max(cx - side / 2, 0.0), width - side)
    top = min(max(cy - side / 2, 0.0), height - side)
    return left, top, left + side, top + side


def resize_square(
    img: Image.Image, size: int, region: tuple[float, float, float, float]
) -> np.ndarray:
    """Cut `region` from `img` and resize it to (size, size, 3) uint8 RGB."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img.resize((size, size), RESAMPLE, box=region), dtype=np.uint8)


def decode_file(
    path: str, box: np.ndarray | None, size: int, image_root: str | None = None
) -> tuple[np.ndarray | None, str | None]:
    """Decode the image at `path`: (pixels (size, size, 3) uint8, None) or (None, reason).

    A bad file is skipped and counted under a drops reason, never fatal, and never opened
    when it is not safe to: a path that leaves `image_root` once symlinks are resolved
    (UNSAFE_PATH), a FIFO, device or folder (NOT_A_FILE: opening a FIFO blocks forever),
    or a header announcing more than MAX_PIXELS pixels (TOO_LARGE). Otherwise
    MISSING_FILE or CORRUPT_IMAGE.
    """
    reason = check_file(path, image_root)
    if reason is not None:
        return None, reason
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                return None, drops.TOO_LARGE
            left, top, right, bottom = square_region(w, h, box)
            side = right - left
            if img.format == "JPEG" and side > 2 * size:
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still leaves at
                # least `size` pixels across the square: a large speed-up for big photos.
                img.draft(img.mode, (math.ceil(w * size / side), math.ceil(h * size / side)))
                sx, sy = img.size[0] / w, img.size[1] / h
                left, top, right, bottom = left * sx, top * sy, right * sx, bottom * sy
            img.load()
            return resize_square(img, size, (left, top, right, bottom)), None
    except (FileNotFoundError, NotADirectoryError):
        return None, drops.MISSING_FILE
    except Image.DecompressionBombError:
        return None, drops.TOO_LARGE
    except (OSError, SyntaxError, ValueError):
        return None, drops.CORRUPT_IMAGE


def check_file(path: str, image_root: str | None) -> str | None:
    """The drops reason not to open `path`, or None: inside `image_root` (after resolving
    symlinks; the root itself may be a link) and a regular file."""
    real = os.path.realpath(path)
    if image_root is not None:
        root = _real(image_root)
        if os.path.commonpath([root, real]) != root:
            return drops.UNSAFE_PATH
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return drops.MISSING_FILE
    except OSError:
        return drops.CORRUPT_IMAGE
    return None if stat.S_ISREG(mode) else drops.NOT_A_FILE


def decode_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """Already-decoded (h, w) or (h, w, 3) uint8 pixels -> (size, size, 3) uint8 RGB."""
    img = Image.fromarray(np.ascontiguousarray(pixels))
    return resize_square(img, size, square_region(img.width, img.height, None))


@lru_cache(maxsize=64)
def _real(folder: str) -> str:
    """realpath of an image folder, once per folder rather than once per image."""
    return os.path.realpath(folder)
