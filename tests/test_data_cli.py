"""`mtl-sweep data synth` and `mtl-sweep data check`, through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mtl_core.cachedir import default_cache_dir
from mtl_sweep.commands.data import data
from mtl_sweep.commands.main import cli as cli_group

SMALL = ["--train", "6", "--val", "3", "--test", "3", "--pretrain", "40"]


@pytest.fixture
def data_cli(cli, monkeypatch: pytest.MonkeyPatch):
    """The `cli` fixture with the `data` group registered (whether or not cli.py has it)."""
    monkeypatch.setitem(cli_group.commands, "data", data)
    return cli


def test_synth_writes_every_format_and_refuses_a_non_empty_folder(data_cli, tmp_path: Path):
    out = tmp_path / "faces"
    r = data_cli("data", "synth", "--out", str(out), *SMALL, "--seed", "2", "--no-progress")
    assert r.code == 0, r.err
    for rel in (
        "chalearn/train_gt.csv",
        "celeba/list_attr_celeba.txt",
        "fer2013/fer2013.csv",
        "imdb_wiki/imdb_crop/imdb.mat",
    ):
        assert (out / rel).is_file()
    assert "chalearn" in r.out and str(out / "celeba") in r.out
    again = data_cli("data", "synth", "--out", str(out), "--no-progress")
    assert again.code == 2 and "not an empty folder" in again.err
    assert data_cli("data", "synth", "--out", str(tmp_path / "x"), "--train", "0").code == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seed", "-1"], "--seed"),  # a traceback from the schema before
        (["--train", "2000000000"], "--train"),
        (["--nuisance", "nan"], "--nuisance: Input should be a finite number"),
    ],
)
def test_synth_refuses_knobs_outside_the_schema(data_cli, tmp_path: Path, args, expected):
    r = data_cli("data", "synth", "--out", str(tmp_path / "x"), *args, "--no-progress")
    assert r.code == 2, r
    assert expected in r.err and "Traceback" not in r.err + r.out
    assert not (tmp_path / "x").exists()


def test_check_sources_prints_counts_drops_and_labels(data_cli, tmp_path: Path):
    out = tmp_path / "faces"
    assert data_cli("data", "synth", "--out", str(out), *SMALL, "--no-progress").code == 0
    (out / "chalearn" / "train" / "000002.jpg").unlink()
    r = data_cli(
        "data",
        "check",
        "--source",
        f"chalearn={out / 'chalearn'}",
        "--source",
        f"imdb_wiki={out / 'imdb_wiki'}",
        "--image-size",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    )
    assert r.code == 0, r.err
    assert "missing_file 1" in r.out  # the deleted image
    assert "range" in r.out and "years" in r.out  # the age distribution
    assert "female" in r.out and "male" in r.out  # IMDB-WIKI's gender
    assert "face_score" in r.out  # IMDB-WIKI's cleaning, by reason
    assert list((tmp_path / "cache" / "decoded").glob("chalearn-16px-*"))


def test_check_a_spec_generates_its_synthetic_data(data_cli, write_spec, tmp_path: Path):
    cache = tmp_path / "cache"
    spec = write_spec(
        f"""
name: tiny
data:
  age: &s {{kind: synthetic, train: 5, val: 2, test: 2, pretrain: 60}}
  gender: *s
  emotion: *s
  smile: *s
  cache_dir: {cache}
train: {{image_size: 16}}
stages:
  pre: {{source: *s}}
"""
    )
    r = data_cli("data", "check", str(spec), "--no-progress")
    assert r.code == 0, r.err
    assert r.out.count(" at ") == 4  # ChaLearn, CelebA, FER2013 and IMDB-WIKI twins
    assert "used by: gender, smile" in r.out and "stage pre" in r.out
    assert "angry" in r.out and "smiling" in r.out
    assert list((cache / "synthetic").iterdir())


def test_check_a_spec_builds_every_size_its_trials_read(data_cli, write_spec, tmp_path: Path):
    # An include rule trains age at another size: both caches exist before the sweep runs.
    cache = tmp_path / "cache"
    spec = write_spec(
        f"""
name: sizes
data:
  age: {{kind: synthetic, train: 5, val: 2, test: 2, pretrain: 8}}
  cache_dir: {cache}
train: {{image_size: 16}}
grid:
  tasks: [[age]]
  include: [{{tasks: [age], label: big, train: {{image_size: 24}}}}]
"""
    )
    r = data_cli("data", "check", str(spec), "--no-progress")
    assert r.code == 0, r.err
    assert "(used by: age; 16px cache)" in r.out and "(used by: age; 24px cache)" in r.out
    decoded = {p.name.split("-")[1] for p in (cache / "decoded").glob("chalearn-*")}
    assert decoded == {"16px", "24px"}
    r = data_cli("data", "check", str(spec), "--no-progress", "--image-size", "32")
    assert "(used by: age; 32px cache)" in r.out and "16px cache" not in r.out


def test_check_missing_data_exits_2_naming_the_path(data_cli, tmp_path: Path):
    missing = tmp_path / "no" / "celeba"
    r = data_cli("data", "check", "--source", f"celeba={missing}", "--cache-dir", str(tmp_path))
    assert r.code == 2 and str(missing) in r.err and "Traceback" not in r.err
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text("0\nMale Smiling\n")
    r = data_cli("data", "check", "--source", f"celeba={root}", "--cache-dir", str(tmp_path))
    assert r.code == 2 and "list_eval_partition.txt" in r.err


def test_check_argument_errors_exit_2(data_cli, tmp_path: Path):
    assert data_cli("data", "check").code == 2
    r = data_cli("data", "check", "--source", "nope=/x")
    assert r.code == 2 and "unknown kind 'nope'" in r.err
    assert data_cli("data", "check", "--source", "celeba").code == 2
    assert data_cli("data", "check", str(tmp_path / "missing.yaml")).code == 2


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("MTL_SWEEP_CACHE", str(tmp_path / "env"))
    assert default_cache_dir(str(tmp_path / "spec")) == tmp_path / "spec"
    assert default_cache_dir(None) == tmp_path / "env"
    monkeypatch.delenv("MTL_SWEEP_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir(None) == tmp_path / "home" / ".cache" / "mtl-sweep"
    monkeypatch.chdir(tmp_path)
    assert default_cache_dir("rel") == tmp_path / "rel"  # absolute: trials run elsewhere


def test_the_data_command_does_not_import_torch():
    code = (
        "import sys, mtl_sweep.commands.data, mtl_core.cachedir; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
