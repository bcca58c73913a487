"""What a new user is told: the end of `run` (the report, a free UI port, the wall time),
`plan` before the datasets exist and counts that add up, "did you mean" for a misspelt
key, and a driver lock that git ignores."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys

import pytest

from mtl_sweep.run.summary import next_steps
from mtl_sweep.store.lease import lock_path
from mtl_sweep.store.ui_link import free_port, runs_view_url
from tests.conftest import REPO, SWEEPS

PAPER_VARS = ("CHALEARN_ROOT", "CELEBA_ROOT", "FER2013_ROOT", "IMDB_WIKI_ROOT")


# --- 5. the end of `run` ------------------------------------------------------------------


def test_the_end_of_run_names_the_report_command_and_the_report_on_the_sweep_run() -> None:
    lines = next_steps("sqlite:////tmp/a b/mlflow.db", "7", "abl", "ablation", True, 5123)
    assert lines[0] == (
        "report: mtl-sweep report --tracking-uri 'sqlite:////tmp/a b/mlflow.db' -e abl "
        "-s ablation -o report.html"
    )
    assert "report.md" in lines[1] and "sweep run" in lines[1]
    assert lines[2].endswith("'sqlite:////tmp/a b/mlflow.db' --port 5123")
    assert lines[3].endswith(runs_view_url("http://127.0.0.1:5123", "7"))
    assert "--port" in lines[4]
    # A report that could not be attached is not claimed.
    quiet = next_steps("sqlite:////tmp/m.db", "7", "abl", "ablation", False, 5000)
    assert not any("report.md" in line for line in quiet)


def test_the_ui_port_is_a_free_one_when_the_default_is_taken() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = free_port(taken)
        assert port != taken
        with socket.socket() as probe:  # the one offered can be listened on
            probe.bind(("127.0.0.1", port))
    assert free_port(port) == port  # a free preferred port is kept


def test_the_wall_time_counts_from_the_command_start() -> None:
    """The process slept 1.5 s before anything of the sweep began: that time counts."""
    code = (
        "import time; time.sleep(1.5)\n"
        "from mtl_sweep.run.summary import command_seconds\n"
        "print(command_seconds())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 1.5 <= float(out.stdout) < 30


# --- 6. plan ------------------------------------------------------------------------------


def test_plan_no_data_previews_a_spec_whose_dataset_variables_are_unset(cli, monkeypatch):
    for name in PAPER_VARS:
        monkeypatch.delenv(name, raising=False)
    refused = cli("plan", str(SWEEPS / "paper.yaml"), "--offline")
    assert refused.code == 2 and "--no-data" in refused.err
    result = cli("plan", str(SWEEPS / "paper.yaml"), "--offline", "--no-data", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["counts"]["main"] == 108
    roots = {t["config"]["data"]["age"]["root"] for t in data["trials"] if "age" in t["tasks"]}
    assert roots and all(r.endswith("${CHALEARN_ROOT}") for r in roots)  # made absolute


def test_no_data_leaves_other_variables_required(cli, write_spec, monkeypatch):
    monkeypatch.delenv("MTL_TEST_UNSET_STORE", raising=False)
    path = write_spec("name: t\ntracking: {uri: '${MTL_TEST_UNSET_STORE}'}\n")
    result = cli("plan", str(path), "--offline", "--no-data")
    assert result.code == 2
    assert "tracking.uri: environment variable MTL_TEST_UNSET_STORE is not set" in result.err


def _adds_up(line: str) -> tuple[int, int]:
    """(left side, right side) of the count line `A in the main grid + B reference = C ...`."""
    left, _, right = line.partition(" = ")
    right = right.split(";")[0]
    lhs = sum(int(n) for n in re.findall(r"(\d+) (?:trials in the main grid|reference)", left))
    terms = re.findall(r"([+−]?) ?(\d+) (grid cells|excluded|added by include|collapsed)", right)
    rhs = sum(-int(n) if sign == "−" else int(n) for sign, n, _ in terms)
    return lhs, rhs


def test_the_plan_count_line_adds_up(cli, write_spec, paper_env):
    result = cli("plan", str(SWEEPS / "paper.yaml"), "--offline")
    line = result.out.strip().splitlines()[-1]
    assert _adds_up(line) == (114, 114), line
    spec = write_spec(
        "name: t\ngrid:\n  tasks: [singles, all]\n  weights: [[1, 1, 1, 1], [1, 2, 1, 1]]\n"
        "  seed: [0, 1]\n  exclude: [{tasks: [age]}]\n"
        "  include: [{tasks: [[age, gender]], seed: [5]}]\n"
    )
    result = cli("plan", str(spec), "--offline", "--format", "json")
    n = len(json.loads(result.out)["trials"])
    line = cli("plan", str(spec), "--offline").out.strip().splitlines()[-1]
    assert "excluded" in line and "added by include" in line and "collapsed" in line
    assert _adds_up(line) == (n, n), line


# --- 7. small things ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ntrian: {}\n", "trian: unknown key 'trian'; did you mean 'train'?"),
        (
            "name: t\ndata: {age: {kind: chalearn, roott: /x}}\n",
            "data.age.roott: unknown key 'roott'; did you mean 'root'?",
        ),
        (
            "name: t\ngrid: {include: [{backbon: resnet18}]}\n",
            "grid.include[0].backbon: unknown key 'backbon'; did you mean 'backbone'?",
        ),
        (
            "name: t\nstages: {pre: {source: {kind: synthetic}, tasks: [age],"
            " train: {optimzer: {name: sgd}}}}\ngrid: {pretrain: [pre]}\n",
            "stages.pre.train.optimzer: unknown key 'optimzer'; did you mean 'optimizer'?",
        ),
        ("name: t\nzzz: 1\n", "zzz: unknown key 'zzz'; known: data, "),
    ],
    ids=["top", "source", "include", "stage-train", "no-close-match"],
)
def test_a_misspelt_key_gets_did_you_mean(cli, write_spec, text, expected):
    result = cli("plan", str(write_spec(text)), "--offline")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert expected in result.err, result.err


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_driver_lock_next_to_the_store_is_ignored_by_git() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    lock = lock_path(f"sqlite:///{REPO / 'mlflow.db'}", "ablation")
    assert lock is not None and lock.name == ".mlflow.db.ablation.driver.lock"
    rel = str(lock.relative_to(REPO))
    check = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "-q", rel], check=False
    )
    assert check.returncode == 0, f"{rel} is not ignored by .gitignore"
    assert lock_path("postgresql://db/mlflow", "ablation") is None
