"""Reading the small delimited label files the datasets ship (CSV, or `;` for ChaLearn 2015)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from mtl_core.errors import DataError


def read_rows(
    path: Path, columns: Sequence[str], too_long: Callable[[], None] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for each data row of a delimited file with a header.

    The delimiter is `;` when the header has one and no comma, else `,`. Header names
    match case-insensitively; a missing column raises DataError naming the file, and so
    does text that is not UTF-8, or a quoted field across lines (an unclosed quote). A
    row with a field over the csv module's limit is skipped and reported through
    `too_long` (a DataError naming the line without one).
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            yield from _rows(f, path, columns, too_long)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason}); re-save it as UTF-8") from None


def _rows(
    f: TextIO, path: Path, columns: Sequence[str], too_long: Callable[[], None] | None
) -> Iterator[tuple[int, dict[str, str]]]:
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
    reader = csv.reader(f, delimiter=delimiter)
    while True:
        start = reader.line_num + 2  # the line this row starts on (the header was line 1)
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader goes on with the next line
            if reader.line_num + 1 > start:  # the field ran on over lines to its limit
                raise _unclosed_quote(path, start, reader.line_num + 1) from None
            if too_long is None or "field limit" not in str(exc):
                raise DataError(f"{path}: line {reader.line_num + 1}: {exc}") from None
            too_long()
            continue
        if any("\n" in cell or "\r" in cell for cell in row):
            # No label file has a field across lines: an unclosed quote swallows every row
            # after it into one field, which no count would show.
            raise _unclosed_quote(path, start, reader.line_num + 1)
        if not row or not any(cell.strip() for cell in row):
            continue
        line = reader.line_num + 1  # + 1: the header was read before the reader started
        yield line, {c: (row[i].strip() if i < len(row) else "") for c, i in where.items()}


def _unclosed_quote(path: Path, start: int, end: int) -> DataError:
    return DataError(
        f"{path}: line {start}: a quoted field runs to line {end} (an unclosed quote?); "
        "fix the file"
    )


def read_lines(path: Path) -> list[str]:
    """The lines of a text label file; DataError naming the file and line if not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text; re-save it as UTF-8") from None


def parse_float(text: str) -> float:
    """A float, or NaN for an empty or unparsable cell."""
    try:
        return float(text)
    except ValueError:
        return math.nan
