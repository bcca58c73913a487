"""Reading the small delimited label files the datasets ship (CSV, or `;` for ChaLearn 2015)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from mtl_core.errors import DataError


def read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for each data row of a delimited file with a header.

    The delimiter is `;` when the header has one and no comma, else `,`. Header names
    match case-insensitively; a missing column raises DataError naming the file.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = f.readline()
        delimiter = ";" if ";" in first and "," not in first else ","
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter), [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(
                f"{path}: header {delimiter.join(header) or '(empty)'!r} lacks column "
                f"{missing[0]!r}; expected {delimiter.join(columns)}"
            )
        where = {c: header.index(c) for c in columns}
        for line, row in enumerate(csv.reader(f, delimiter=delimiter), start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            yield line, {c: (row[i].strip() if i < len(row) else "") for c, i in where.items()}


def parse_float(text: str) -> float:
    """A float, or NaN for an empty or unparsable cell."""
    try:
        return float(text)
    except ValueError:
        return math.nan
