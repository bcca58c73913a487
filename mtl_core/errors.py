"""User-facing errors. The CLI turns each into one line and exit code 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad spec, bad argument or missing data (exit code 2)."""


class SpecError(UserError):
    """A spec problem, located by file and key path."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class DataError(UserError):
    """A dataset root or file that is missing or unreadable."""


def format_loc(loc: tuple[object, ...] | list[object]) -> str:
    """Render a key path such as ('grid', 'backbone', 1) as 'grid.backbone[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class InfraError(Exception):
    """The tracking store or the Ray cluster is unreachable or broken (exit code 3)."""
