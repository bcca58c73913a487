"""The fault matrix: each hostile input or fault is one case with its documented outcome.

Either a one-line error (exit code, a single stderr line, no traceback) or a counted drop
reason in `mtl-sweep data check`. Sections:
- spec: what `mtl-sweep plan` refuses;
- hostile data: what `mtl-sweep data check` refuses or counts;
- security: what is never persisted or unpickled.
(Run-time faults, such as signals, two drivers and tracking-server outages, go below.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mtl_sweep.commands.data import data
from mtl_sweep.commands.main import cli as cli_group

from .conftest import SWEEPS, CliResult
from .hostile import (
    N_IMDB,
    ROW_FAULTS,
    cell,
    csv_source,
    dropped,
    fer_row,
    jpeg,
    latin1_celeba,
    latin1_chalearn,
    latin1_csv,
    latin1_fer,
    latin1_genki,
    unblock_fifo_after,
    usable,
    write_fer,
    write_mat,
)

SIZE = "16"  # decoded image side for these tests


def one_line_error(r: CliResult, code: int, *needles: str) -> None:
    """The CLI failed with `code` and one stderr line holding every needle."""
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert r.code == code, r.err
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def data_cli(cli, monkeypatch: pytest.MonkeyPatch):
    """The `cli` fixture with the `data` group registered (whether or not cli.py has it)."""
    monkeypatch.setitem(cli_group.commands, "data", data)
    return cli


@pytest.fixture
def check(data_cli, tmp_path: Path) -> Callable[..., CliResult]:
    """`mtl-sweep data check --source ...` with a cache of the test's own."""

    def run(*sources: str, cache: Path | None = None, size: str = SIZE) -> CliResult:
        args = [a for s in sources for a in ("--source", s)]
        cache = cache or tmp_path / "cache"
        return data_cli(
            "data", "check", *args, "--cache-dir", str(cache), "--image-size", size, "--no-progress"
        )

    return run


# --- paths and addresses a user named ------------------------------------------------------
# Checked before anything starts: each was a traceback (or, for the address, minutes of Ray
# retrying) after MLflow or the data had been touched.


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["--set", "data.cache_dir={file}"], 2, ["the cache folder", "is a file, not a folder"]),
        (["--storage-path", "{file}/sub"], 2, ["the Tune storage folder", "cannot be created"]),
        (["--address", "127.0.0.1:{port}"], 3, ["no Ray cluster answers at 127.0.0.1:"]),
    ],
    ids=["cache-is-a-file", "storage-under-a-file", "address-refused"],
)
def test_run_refuses_a_bad_path_or_address_before_starting(cli, tmp_path, args, code, needles):
    file = tmp_path / "afile"
    file.write_text("")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = s.getsockname()[1]
        filled = [a.format(file=file, port=port) for a in args]
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        r = cli("run", str(SWEEPS / "smoke.yaml"), *filled, "--tracking-uri", uri)
    one_line_error(r, code, *needles)
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was touched


def test_a_dry_run_refuses_what_the_run_would_and_starts_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_SWEEP_CACHE", str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["run", str(SWEEPS / "smoke.yaml"), "--dry-run", "--tracking-uri", uri]
    # It said "4 trials would run"; the run itself refused the spec.
    one_line_error(cli(*args, "--set", "resources.cpu=1000"), 2, "resources.cpu: each trial asks")
    ok = cli(*args, "--set", "grid.pretrain=[none]")
    assert ok.code == 0, ok.err
    assert "dry run: 0 pretraining jobs and 2 trials would run (no store at" in ok.out
    assert not (tmp_path / "mlflow.db").exists()


def test_a_split_its_labels_leave_empty_stops_the_run_before_any_trial(cli, tmp_path, monkeypatch):
    # Each trial failed on it in turn (with retries), after Ray had started.
    monkeypatch.setenv("MTL_SWEEP_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "csv"
    rows = ["image,gender,smile,split"]
    for split, label in (("train", "1"), ("val", "x"), ("test", "0")):
        for i in range(2):
            jpeg(root / f"{split}{i}.jpg")
            rows.append(f"{split}{i}.jpg,{label},{label},{split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = cli(
        "run", str(SWEEPS / "smoke.yaml"), "--tracking-uri", uri,
        *("--set", "grid.tasks=[gender]", "--set", "grid.pretrain=[none]"),
        *("--set", f"data.gender={{kind: csv, root: {root}}}"),
    )  # fmt: skip
    assert r.code == 2, r.err
    assert f"no usable val sample in csv at {root} (bad_label 2); every trial" in r.err
    assert "Traceback" not in r.err
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    assert not [
        r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
    ]


def test_report_and_synth_refuse_output_paths_before_working(data_cli, tmp_path):
    file = tmp_path / "afile"
    file.write_text("")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = data_cli("report", "--tracking-uri", uri, "-o", str(tmp_path / "r.md"), "--plot", "p.txt")
    one_line_error(r, 2, "--plot p.txt: .txt is not an image format")
    assert not (tmp_path / "r.md").exists()  # before: written, then a traceback
    r = data_cli("report", "--tracking-uri", uri, "-o", str(file / "r.md"))
    one_line_error(r, 2, "-o's folder", "is a file, not a folder")
    r = data_cli("data", "synth", "--out", str(file / "faces"), "--no-progress")
    one_line_error(r, 2, "--out's parent folder", "is a file, not a folder")


# --- spec ------------------------------------------------------------------------------------

BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    ]
    + ["name: bomb"]
)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name: a\nname: b\n", ["line 2", "duplicate key 'name'", "first given on line 1"]),
        ("name: a\ntrain:\n  epochs: 2\n  epochs: 3\n", ["duplicate key 'epochs'", "line 3"]),
        ("name: a\ntrain:\n  optimizer:\n    lr: .inf\n", ["train.optimizer.lr", "finite"]),
        ("name: a\ngrid:\n  weights: [[1, .nan, 1, 1]]\n", ["grid.weights[0][1]", "finite"]),
        ("name: a\nresources:\n  cpu: .inf\n", ["resources.cpu", "finite"]),
        (BOMB, ["alias bomb"]),
        ("name: a\nx: &x [*x]\n", ["recursive alias"]),
        ("name: a\nv: " + "[" * 3000 + "]" * 3000 + "\n", ["nested too deeply"]),
        ("name: a\ntracking:\n  experiment: ../../etc\n", ["tracking.experiment"]),
        ("name: a\ntracking:\n  experiment: /abs\n", ["tracking.experiment"]),
    ],
    ids=[
        "duplicate-top-key",
        "duplicate-nested-key",
        "inf",
        "nan-in-list",
        "inf-cpus",
        "alias-bomb",
        "recursive-alias",
        "deep-nesting",
        "experiment-dotdot",
        "experiment-absolute",
    ],
)
def test_spec_refused(cli, write_spec, text: str, needles: list[str]) -> None:
    path = write_spec(text)
    one_line_error(cli("plan", "--offline", str(path)), 2, str(path), *needles)


def test_spec_merge_keys_are_not_duplicates(cli, write_spec) -> None:
    path = write_spec("name: a\ntrain:\n  <<: {epochs: 2, batch_size: 8}\n  epochs: 3\n")
    r = cli("plan", "--offline", "--format", "json", str(path))
    assert r.code == 0, r.err


def test_spec_infinite_override_refused(cli, write_spec) -> None:
    path = write_spec("name: a\n")
    r = cli("plan", "--offline", str(path), "--set", "train.optimizer.lr=.inf")
    one_line_error(r, 2, "train.optimizer.lr", "finite")


def test_spec_not_utf8(cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: a\ndescription: caf\u00e9\n".encode("latin-1"))
    one_line_error(cli("plan", "--offline", str(path)), 2, str(path), "line 2", "not UTF-8")


def test_spec_fifo_is_not_read(cli, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    os.mkfifo(path)
    with unblock_fifo_after(path):
        one_line_error(cli("plan", "--offline", str(path)), 2, "not a regular file")


# --- hostile data ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", list(ROW_FAULTS))
def test_data_hostile_image_paths_are_counted_never_read(check, tmp_path: Path, fault: str):
    reason, make = ROW_FAULTS[fault]
    root = tmp_path / "csv"
    root.mkdir()
    name = make(root, tmp_path)
    source = csv_source(root, [f"{name},1,1,train"])
    with unblock_fifo_after(root / "pipe.jpg"):
        r = check(source)
    assert dropped(r, reason) == 1
    assert dropped(r, "corrupt_image") == 0  # refused before decoding, not failed at it


def test_data_symlink_inside_the_root_and_a_linked_root_are_fine(check, tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    jpeg(real / "target.jpg")
    os.symlink(real / "target.jpg", real / "alias.jpg")
    csv_source(real, ["alias.jpg,1,1,train"])
    linked = tmp_path / "linked"
    os.symlink(real, linked)  # a dataset root that is itself a link (another disk)
    r = check(f"csv={linked}")
    assert dropped(r, "unsafe_path") == 0
    assert usable(r)["train"] == 3  # the two plain images and the alias


def test_data_fer2013_over_long_field_is_counted(check, tmp_path: Path):
    write_fer(tmp_path / "fer", [fer_row("Training", "1 " * 100_000)])
    r = check(f"fer2013={tmp_path / 'fer'}")
    assert dropped(r, "long_field") == 1


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("chalearn", latin1_chalearn),
        ("celeba", latin1_celeba),
        ("fer2013", latin1_fer),
        ("csv", latin1_csv),
        ("genki", latin1_genki),
    ],
)
def test_data_label_file_not_utf8(check, tmp_path: Path, kind: str, make) -> None:
    bad = make(tmp_path / kind)
    one_line_error(check(f"{kind}={tmp_path / kind}"), 2, str(bad), "not UTF-8")


def test_data_label_file_that_is_a_fifo(check, tmp_path: Path) -> None:
    root = tmp_path / "fer"
    root.mkdir()
    os.mkfifo(root / "fer2013.csv")
    with unblock_fifo_after(root / "fer2013.csv"):
        r = check(f"fer2013={root}")
    one_line_error(r, 2, str(root / "fer2013.csv"), "not a regular file")


def test_data_imdb_malformed_cells_are_counted(check, tmp_path: Path) -> None:
    boxes = [np.array([[5.0, 5.0, 30.0, 30.0]]) for _ in range(N_IMDB)]
    boxes[0] = np.array([[1.0, 2.0]])  # not 1x4
    boxes[1] = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    paths = [f"00/{i}.jpg" for i in range(N_IMDB)]
    paths[2] = np.array([[7.0]])  # a number where a path should be
    paths[3] = "../../outside.jpg"
    jpeg(tmp_path / "outside.jpg")
    write_mat(
        tmp_path / "imdb" / "imdb_crop", "imdb", face_location=cell(boxes), full_path=cell(paths)
    )
    r = check(f"imdb_wiki={tmp_path / 'imdb'}")
    assert dropped(r, "bad_box") == 2
    assert dropped(r, "bad_path") == 1
    assert dropped(r, "unsafe_path") == 1


@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        ({"dob": np.full((1, 5), 723671.0)}, ["'dob'", "5 entries"]),
        ({"gender": cell(["male"] * N_IMDB)}, ["'gender'", "non-numbers"]),
        ({"face_location": cell([np.zeros((1, 4))] * 3)}, ["'face_location'", "3 entries"]),
    ],
    ids=["short-dob", "string-gender", "short-face-location"],
)
def test_data_imdb_malformed_fields_are_one_line(check, tmp_path: Path, fields, needles):
    write_mat(tmp_path / "imdb" / "imdb_crop", "imdb", **fields)
    mat = tmp_path / "imdb" / "imdb_crop" / "imdb.mat"
    one_line_error(check(f"imdb_wiki={tmp_path / 'imdb'}"), 2, str(mat), *needles)


def test_data_imdb_not_a_mat_file(check, tmp_path: Path) -> None:
    crop = tmp_path / "imdb" / "imdb_crop"
    crop.mkdir(parents=True)
    (crop / "imdb.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    one_line_error(check(f"imdb_wiki={tmp_path / 'imdb'}"), 2, str(crop / "imdb.mat"))


def test_data_wiki_layout_and_source_settings(check, tmp_path: Path) -> None:
    write_mat(tmp_path / "data" / "wiki_crop", "wiki")
    crop = tmp_path / "data" / "wiki_crop"
    for root in (tmp_path / "data", crop):  # the parent, or the crop folder itself
        r = check(f"imdb_wiki={root},db=wiki,max_images=30")
        assert r.code == 0, r.err
        assert dropped(r, "over_max_images") == N_IMDB - 30
    # Without db=wiki: the hint names the setting.
    one_line_error(check(f"imdb_wiki={crop}"), 2, "imdb.mat", "set db=wiki")


@pytest.mark.parametrize(
    ("arg", "needles"),
    [
        ("imdb_wiki={root},db=nope", ["db:", "'imdb' or 'wiki'"]),
        ("imdb_wiki={root},max_images=-3", ["max_images"]),
        ("celeba={root},colour=1", ["colour", "unknown setting"]),
        ("celeba={root},images", ["bad setting 'images'"]),
        ("synthetic={root}", ["unknown kind 'synthetic'"]),
    ],
)
def test_data_source_settings_are_validated(check, tmp_path: Path, arg: str, needles) -> None:
    one_line_error(check(arg.format(root=tmp_path)), 2, "--source", *needles)


def test_data_check_fails_when_a_split_has_no_usable_sample(check, tmp_path: Path) -> None:
    root = tmp_path / "csv"
    root.mkdir()
    rows = ["image,gender,smile,split"]
    for split in ("train", "test"):
        jpeg(root / f"{split}.jpg")
        rows.append(f"{split}.jpg,1,0,{split}")
    rows.append("missing.jpg,1,0,val")  # val: its only image does not exist
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    r = check(f"csv={root}")
    one_line_error(r, 2, "no usable sample", f"csv at {root} (val)")
    assert "missing_file" in r.out  # the report still shows why


def test_data_an_unclosed_quote_is_one_line_not_lost_rows(check, tmp_path: Path) -> None:
    # The csv module put every row after the quote into one field: 1 usable, 1 dropped,
    # and the rest of the file in no count.
    root = tmp_path / "csv"
    source = csv_source(
        root, ['"train9.jpg,1,0,train', *[f"train{i}.jpg,1,0,train" for i in range(5)]]
    )
    one_line_error(check(source), 2, "labels.csv: line 8: a quoted field runs to line 13")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (the cache has no room), or skip where this machine cannot mount."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_data_cache_on_a_full_disk_is_one_line_and_leaves_nothing(check, tmp_path, tiny_disk):
    root = tmp_path / "csv"
    root.mkdir()
    source = csv_source(root, [], good=6)  # 18 images; at 256 px, 3.4 MiB decoded
    r = check(source, cache=tiny_disk, size="256")
    one_line_error(r, 2, "no space left", str(tiny_disk / "decoded"))
    leftovers = [p.name for p in (tiny_disk / "decoded").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []  # no temporary folder, no partial cache


# --- security --------------------------------------------------------------------------------


SECRET = "s3cr3t-t0ken-value"


def test_security_env_secrets_never_reach_the_spec_artifact(monkeypatch, write_spec, tmp_path):
    from mtl_sweep.spec.load import load_spec
    from mtl_sweep.spec.redact import redacted_dump

    monkeypatch.setenv("MLFLOW_TOKEN", SECRET)
    monkeypatch.setenv("AGE_ROOT", str(tmp_path / "chalearn"))
    path = write_spec(
        "name: a\n"
        "tracking:\n  uri: http://sweeper:${MLFLOW_TOKEN}@127.0.0.1:5999\n"
        "data:\n  age: {kind: chalearn, root: '${AGE_ROOT}'}\n"
        "stages:\n  p:\n    source: {kind: imdb_wiki, root: '/x/${MLFLOW_TOKEN}'}\n"
    )
    spec = load_spec(path)
    assert SECRET in spec.tracking.uri  # the run itself uses the real value
    text = redacted_dump(spec)
    assert SECRET not in text
    assert "http://sweeper:${MLFLOW_TOKEN}@127.0.0.1:5999" in text
    assert "/x/${MLFLOW_TOKEN}" in text  # a secret-looking name, wherever it is used
    assert str(tmp_path / "chalearn") in text  # not a secret: kept as resolved


def test_security_tracking_uri_is_redacted_whatever_the_variable(monkeypatch, write_spec):
    from mtl_sweep.spec.load import load_spec
    from mtl_sweep.spec.redact import redact_uri, redacted_dump

    monkeypatch.setenv("STORE", f"https://{SECRET}@mlflow.example")
    spec = load_spec(write_spec("name: a\ntracking:\n  uri: ${STORE}\n"))
    assert SECRET not in redacted_dump(spec) and "${STORE}" in redacted_dump(spec)
    # A password written into a URI is masked wherever a URI is redacted.
    assert redact_uri(f"postgresql://mlflow:{SECRET}@db:5432/x") == (
        "postgresql://mlflow:***@db:5432/x"
    )


def test_security_tune_params_get_a_redacted_uri_and_trials_the_real_one(
    monkeypatch, write_spec, tmp_path
):
    import trainables.trainable
    from mtl_core.trial import TUNE_CONFIG_KEY
    from mtl_sweep.expand import expand
    from mtl_sweep.run.requests import RunContext, trial_request
    from mtl_sweep.spec.load import load_spec
    from trainables.tune_entry import tune_trainable

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    path = write_spec("name: a\ntracking:\n  uri: http://u:${MLFLOW_TRACKING_TOKEN}@h:5000\n")
    spec = load_spec(path)
    ctx = RunContext(spec, spec.tracking.uri, "1", None, tmp_path)
    request = trial_request(expand(spec, str(path)).trials[0], ctx)
    assert SECRET not in repr(request)  # what Tune persists with the trial's config
    seen = []
    monkeypatch.setattr(trainables.trainable, "tune_trainable", seen.append)
    tune_trainable({TUNE_CONFIG_KEY: request}, tracking_uri=spec.tracking.uri)
    assert seen[0][TUNE_CONFIG_KEY].execution.tracking_uri == spec.tracking.uri


def test_security_imagenet_weights_are_unpickled_weights_only(monkeypatch, tmp_path):
    import torchvision
    from torchvision.models import _api

    from trainables.models import backbones

    state = torchvision.models.resnet18().state_dict()
    calls: list[dict] = []

    def fake_load(url, *args, **kwargs):
        calls.append(kwargs)
        return state

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(_api, "load_state_dict_from_url", fake_load)
    backbones.build_trunk("resnet18", pretrained=True)
    assert len(calls) == 2  # the fetch, then torchvision's builder
    assert all(c.get("weights_only") is True for c in calls), calls
    # Outside build_trunk, torchvision is left as it was.
    assert _api.WeightsEnum.get_state_dict is not None
    calls.clear()
    torchvision.models.ResNet18_Weights.DEFAULT.get_state_dict(progress=False)
    assert "weights_only" not in calls[0]
