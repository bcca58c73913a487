"""The README and the docs site stay what CI, the Docker image and the cluster test read.

CI builds the site with `mkdocs build --strict` (.ci/run); these checks need no mkdocs, so
a missing page or a stale command shows in any `pytest` run.
"""

from __future__ import annotations

import re

import yaml

from .conftest import REPO
from .test_cluster import documented_cluster_commands

DOCS = REPO / "docs"
README_MAX_LINES = 200  # the README is the front door: the reference lives in docs/


def _nav_pages(nav: list) -> list[str]:
    """Every page file named in an mkdocs nav, depth first."""
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_the_readme_opens_with_the_install_and_run_and_the_install_and_test_commands():
    first, second = (REPO / "README.md").read_text().splitlines()[:2]
    assert first == "pip install -e . && mtl-sweep run sweeps/ablation.yaml"
    # .ci/run greps this line and runs it; docker/Dockerfile installs with the first.
    assert second == "pip install -e '.[test]' && pytest"
    assert re.search(r"^pip install .*\[test\].*pytest", second)


def test_the_readme_stays_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move reference to docs/"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav))


def test_the_docs_requirements_pin_mkdocs_and_material():
    pins = dict(
        line.split("==")
        for line in (DOCS / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(pins) == {"mkdocs", "mkdocs-material"}
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in pins.values())


def test_the_cluster_block_gives_the_four_commands_the_cluster_test_runs():
    head, worker, server, sweep = documented_cluster_commands()
    assert head.startswith("ray start --head") and "HEAD_IP" in head
    assert worker.startswith("ray start --address=HEAD_IP:")
    assert server.startswith("mlflow server")
    assert sweep.startswith("mtl-sweep run ") and "--address HEAD_IP:" in sweep


def test_nothing_cites_a_design_file_outside_the_repo():
    # The design is docs/design.md: an upper-case design file is one a clone lacks.
    folders = (
        "mtl_core",
        "mtl_data",
        "mtl_sweep",
        "trainables",
        "tests",
        "benchmarks",
        "docs",
        "sweeps",
    )
    files = [REPO / "README.md", *(p for d in folders for p in (REPO / d).rglob("*.*"))]
    citing = [
        str(path.relative_to(REPO))
        for path in files
        if path.suffix in {".py", ".md", ".sh", ".yaml"}
        and re.search(r"\bDESIGN\.md", path.read_text(errors="ignore"))
    ]
    assert not citing, citing
