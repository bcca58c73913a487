"""Shared fixtures. Every test gets its own tmp_path and tracking store."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mtl_sweep.commands.main import main

REPO = Path(__file__).resolve().parents[1]
SWEEPS = REPO / "sweeps"

# Ray stays on loopback; nothing in the tests may reach another address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `mtl-sweep ARGS` in-process; returns the exit code and captured output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def paper_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Dataset roots for sweeps/paper.yaml (the plan does not need the data to exist)."""
    for var in ("CHALEARN_ROOT", "CELEBA_ROOT", "FER2013_ROOT", "IMDB_WIKI_ROOT"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a spec file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests share one xdist worker, in order: each sweep sizes itself to the
    machine's cores, and two at once would each run at half speed near their timeouts."""
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.xdist_group("e2e"))
