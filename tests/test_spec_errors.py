"""Bad specs exit 2 with one line naming the file and the key path, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mtl_sweep.store.uri import absolute_uri

GOOD = """\
name: t
stages:
  pre: {source: {kind: synthetic}, tasks: [age, gender]}
grid:
  tasks: [singles, all]
  backbone: [resnet18]
  pretrain: [none, pre]
"""

# (id, spec text or None for GOOD, extra CLI args, text the error line must contain)
CASES = [
    ("yaml-syntax", "name: t\ngrid:\n  tasks: [age\n", [], "line 4"),
    ("unknown-top-key", GOOD + "trian: {}\n", [], "trian: unknown key 'trian'"),
    ("unknown-nested-key", GOOD + "train: {epoch: 3}\n", [], "train.epoch: unknown key"),
    ("wrong-type", GOOD + "train: {epochs: three}\n", [], "train.epochs"),
    ("non-positive", GOOD + "train: {batch_size: 0}\n", [], "train.batch_size"),
    (
        "unknown-task",
        "name: t\ngrid: {tasks: [singles, [age, height]]}\n",
        [],
        "grid.tasks[1]: unknown task 'height'",
    ),
    (
        "unknown-shorthand",
        "name: t\ngrid: {tasks: [triples]}\n",
        [],
        "grid.tasks[0]: unknown task or shorthand 'triples'",
    ),
    (
        "unknown-backbone",
        "name: t\ngrid: {backbone: [resnet18, resnet81]}\n",
        [],
        "grid.backbone[1]: unknown backbone 'resnet81'",
    ),
    (
        "pretrain-no-stage",
        "name: t\ngrid: {pretrain: [none, imagenet21k]}\n",
        [],
        "grid.pretrain[1]: 'imagenet21k' names no stage",
    ),
    (
        "negative-weight",
        "name: t\ngrid: {weights: [[1, -1, 1, 1]]}\n",
        [],
        "grid.weights[0]: weight of gender must be a finite number >= 0",
    ),
    (
        "all-weights-zero",
        "name: t\ngrid: {weights: [[1, 1, 1, 1], [0, 0, 0, 0]]}\n",
        [],
        "grid.weights[1]: all weights are zero",
    ),
    ("weight-length", "name: t\ngrid: {weights: [[1, 1]]}\n", [], "grid.weights[0]"),
    ("empty-axis", "name: t\ngrid: {seed: []}\n", [], "grid.seed: empty axis"),
    (
        "unset-env",
        "name: t\ndata:\n  age: {kind: chalearn, root: '${MTL_TEST_UNSET_ROOT}'}\n",
        [],
        "data.age.root: environment variable MTL_TEST_UNSET_ROOT is not set",
    ),
    (
        "malformed-set",
        None,
        ["--set", "train.epochs"],
        "--set: train.epochs: expected key.path=value",
    ),
    ("set-bad-value", None, ["--set", "grid.seed=[0, 1"], "--set: grid.seed: cannot parse"),
    ("set-invalid", None, ["--set", "train.epochs=-1"], "train.epochs"),
    (
        "unknown-weighting",
        "name: t\ngrid: {weighting: [fixed, pcgrad]}\n",
        [],
        "grid.weighting[1]: unknown weighting 'pcgrad'",
    ),
    (
        "unknown-source-kind",
        "name: t\ndata: {age: {kind: utkface, root: /x}}\n",
        [],
        "data.age: unknown source kind 'utkface'",
    ),
    (
        "source-lacks-task",
        "name: t\ndata: {age: {kind: fer2013, root: /x}}\n",
        [],
        "data.age.kind: 'fer2013' has no age labels",
    ),
    (
        "source-missing-root",
        "name: t\ndata: {age: {kind: chalearn}}\n",
        [],
        "data.age.root: required key is missing",
    ),
    ("missing-name", "grid: {seed: [0]}\n", [], "name: required key is missing"),
    ("bad-name", "name: 'my sweep'\n", [], "name:"),
    ("not-a-mapping", "- name: t\n", [], "a spec is a mapping"),
    (
        "reference-wrong-tasks",
        "name: t\ngrid: {backbone: [ssrnet], tasks: [singles]}\n",
        [],
        "grid.backbone: reference model 'ssrnet' trains only age",
    ),
    (
        "stage-named-none",
        "name: t\nstages: {none: {source: {kind: synthetic}}}\n",
        [],
        "stages.none",
    ),
    (
        "stage-bad-source",
        "name: t\nstages: {pre: {source: {kind: fer2013, root: /x}}}\n",
        [],
        "stages.pre.source.kind",
    ),
    (
        "stage-bad-train",
        GOOD.replace("tasks: [age, gender]}", "tasks: [age], train: {lr: 1}}"),
        [],
        "stages.pre.train.lr: unknown key",
    ),
    (
        "include-bad-backbone",
        "name: t\ngrid: {include: [{backbone: vgg99}]}\n",
        [],
        "grid.include[0].backbone[0]: unknown backbone 'vgg99'",
    ),
    ("exclude-empty", "name: t\ngrid: {exclude: [{}]}\n", [], "grid.exclude[0]"),
    ("bad-device", "name: t\ntrain: {device: gpu0}\n", [], "train.device"),
    # A key that no trial reads is refused, not ignored.
    (
        "momentum-without-sgd",
        GOOD + "train: {optimizer: {name: adam, momentum: 0.5}}\n",
        [],
        "train.optimizer.momentum: read by sgd only, and the optimizer is adam: remove it",
    ),
    (
        "stage-dwa",
        GOOD.replace(
            "tasks: [age, gender]}", "tasks: [age, gender], train: {dwa: {temperature: 3}}}"
        )
        + "  weighting: [dwa]\n",
        [],
        "stages.pre.train.dwa.temperature: read by the dwa weighting only, and these trials use",
    ),
    (
        "gamma-on-cosine",
        None,
        ["--set", "train.schedule.gamma=0.5"],
        "train.schedule.gamma: read by the step schedule only, and the schedule is cosine",
    ),
    (
        "everything-excluded",
        None,
        ["--set", "grid.exclude=[{pretrain: none}, {pretrain: pre}]"],
        "grid.exclude: no trial is left: 10 of 10 cell(s) excluded",
    ),
    (
        "reference-model-repeats-a-grid-cell",
        None,
        ["--set", "grid.include=[{tasks: [[age]], pretrain: [none], label: DEX}]"],
        "grid.include[0].label: the reference model 'DEX' is the same trial as",
    ),
    (
        "warmup-never-ends",
        GOOD + "train: {epochs: 3, schedule: {warmup_epochs: 3}}\n",
        [],
        "train.schedule.warmup_epochs: warmup of 3 epoch(s) in a schedule of 3",
    ),
    (
        "step-never-decays",
        GOOD + "train: {epochs: 10, schedule: {name: step, step_size: 10}}\n",
        [],
        "train.schedule.step_size: a step every 10 epoch(s) after 0 of warmup, in 10",
    ),
    (
        "empty-reference-label",
        "name: t\ngrid: {include: [{tasks: [[age]], label: ''}]}\n",
        [],
        "grid.include[0].label",
    ),
    (
        "cuda-without-a-gpu-share",
        "name: t\ntrain: {device: 'cuda:1'}\n",
        [],
        "train.device: cuda:1 with resources.gpu 0: Ray would reserve no GPU",
    ),
    (
        "include-execution-key",
        "name: t\ngrid: {include: [{train: {device: cpu}}]}\n",
        [],
        "grid.include[0].train.device: an execution setting applies to the whole sweep",
    ),
    (
        "stage-train-epochs",
        GOOD.replace("tasks: [age, gender]}", "tasks: [age], train: {epochs: 2}}"),
        [],
        "stages.pre.train.epochs: set the stage's own `epochs` instead",
    ),
    (
        "ssrnet-imagenet",
        "name: t\ngrid: {tasks: [all], include: [{backbone: ssrnet, tasks: [age],"
        " train: {imagenet_weights: true}}]}\n",
        [],
        "ssrnet' has no ImageNet weights",
    ),
    (
        "ssrnet-too-small",
        "name: t\ngrid: {tasks: [all], include: [{backbone: ssrnet, tasks: [age],"
        " train: {image_size: 32}}]}\n",
        [],
        "grid.include[0].train.image_size: image_size 32 is too small for ssrnet: "
        "it needs at least 38",
    ),
    (
        "epoch-rule-under-matched",
        GOOD + "data: {epoch_rule: sum}\n",
        [],
        "data.epoch_rule: sizes an epoch under budget.rule per_epoch",
    ),
    (
        "crop-area-over-one",
        GOOD + "train: {augment: {scale: [0.5, 1.5]}}\n",
        [],
        "train.augment.scale: a crop's area is at most the whole image (1.0), not 1.5",
    ),
    (
        "crop-ratio-zero",
        GOOD + "train: {augment: {ratio: [0, 1]}}\n",
        [],
        "train.augment.ratio[0]: Input should be greater than 0",
    ),
    (
        "stage-other-budget-rule-setting",
        GOOD.replace("tasks: [age, gender]}", "tasks: [age, gender], train: {steps_per_epoch: 5}}"),
        [],
        "stages.pre.train.steps_per_epoch: applies to budget.rule per_epoch",
    ),
    (
        "seed-out-of-range",
        GOOD.replace("pretrain: [none, pre]", "pretrain: [none, pre]\n  seed: [0, -1]"),
        [],
        "grid.seed[1]: Input should be greater than or equal to 0",
    ),
    (
        "absurd-count",
        GOOD + "train: {epochs: " + "9" * 400 + "}\n",
        [],
        "train.epochs: Input should be less than or equal to 1000000000 (got 99999",
    ),
    (
        "set-alias-bomb-guarded",
        None,
        ["--set", "grid.seed=&a [*a]"],
        "--set: grid.seed: a recursive alias",
    ),
    (
        "per-epoch-batch-below-sources",
        "name: t\ndata: {age: {seed: 1}, gender: {seed: 2}, emotion: {seed: 3}, smile: {seed: 4}}"
        "\ntrain: {batch_size: 2, budget: {rule: per_epoch}}\ngrid: {tasks: [all]}\n",
        [],
        "spec.yaml: train.batch_size: per_epoch splits each batch across the trial's 4 sources",
    ),
    (
        "held-out-fractions-leave-no-train-split",
        GOOD.replace(
            "{kind: synthetic}",
            "{kind: imdb_wiki, root: /x, val_fraction: 0.6, test_fraction: 0.6}",
        ),
        [],
        "stages.pre.source: val_fraction + test_fraction is 1.2: nothing is left to train",
    ),
    (
        "nested-env-default",
        "name: t\ndata:\n  age: {kind: chalearn, root: '${MTL_A:-${MTL_B}}'}\n",
        [],
        "data.age.root: the default of ${MTL_A:-...} cannot hold a ${VAR}",
    ),
    (
        "seed-is-not-a-bool",
        GOOD.replace("pretrain: [none, pre]", "pretrain: [none, pre]\n  seed: [true]"),
        [],
        "grid.seed[0]: true/false is not a value of this setting",
    ),
    # pydantic alone reads YAML's true/yes/on as 1.0: a weight or a rate of `true` ran.
    (
        "weight-is-not-a-bool",
        "name: t\ngrid: {tasks: [all], weights: [{age: 2, smile: true}]}\n",
        [],
        "grid.weights[0].smile: true/false is not a value of this setting",
    ),
    ("rate-is-not-yes", GOOD + "train: {optimizer: {lr: yes}}\n", [], "train.optimizer.lr: true"),
    (
        "include-rate-is-not-a-bool",
        "name: t\ngrid: {include: [{tasks: [[age]], train: {optimizer: {weight_decay: off}}}]}\n",
        [],
        "grid.include[0].train.optimizer.weight_decay: true/false is not a value",
    ),
    (
        "override-cpu-is-not-a-bool",
        None,
        ["--set", "resources.cpu=on"],
        "spec.yaml (--set resources.cpu=on): resources.cpu: true/false is not a value",
    ),
    (
        "unnamed-stage",
        GOOD.replace("  pre: {", '  "": {').replace(
            "pretrain: [none, pre]", 'pretrain: [none, ""]'
        ),
        [],
        "stages: a stage needs a name",
    ),
    (
        "torchvision-too-small",
        GOOD.replace("[resnet18]", "[resnet18, squeezenet1_0]") + "train: {image_size: 16}\n",
        [],
        "spec.yaml: train.image_size: image_size 16 is too small for squeezenet1_0: it needs",
    ),
    (
        "vit-patches-do-not-tile",
        GOOD.replace("[resnet18]", "[vit_b_16]") + "train: {image_size: 40}\n",
        [],
        "image_size 40 does not fit vit_b_16: it needs a multiple of 16 (e.g. 48)",
    ),
    (
        "stage-too-small",
        GOOD.replace("[resnet18]", "[vgg11]").replace(
            "tasks: [age, gender]}", "tasks: [age, gender], train: {image_size: 24}}"
        )
        + "train: {image_size: 32}\n",
        [],
        "stages.pre.train.image_size: image_size 24 is too small for vgg11",
    ),
]


@pytest.mark.parametrize(
    ("text", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_spec_exits_2_with_one_line(cli, write_spec, monkeypatch, text, args, expected):
    monkeypatch.delenv("MTL_TEST_UNSET_ROOT", raising=False)
    path = write_spec(text if text is not None else GOOD)
    result = cli("plan", str(path), "--offline", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert expected in lines[0], lines[0]
    if not args or "--set" not in args or "=" in args[-1]:
        assert str(path) in lines[0] or lines[0].startswith("error: --set")


def test_at_least_15_kinds_of_bad_spec():
    assert len(CASES) >= 15


def test_missing_spec_file(cli, tmp_path):
    result = cli("plan", str(tmp_path / "nope.yaml"), "--offline")
    assert result.code == 2
    assert "no such spec file" in result.err


def test_error_line_from_a_real_process(write_spec):
    """The installed entry point prints no traceback either (not only the in-process call)."""
    path = write_spec("name: t\ngrid: {backbone: [resnet81]}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mtl_sweep", "plan", str(path), "--offline"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert "grid.backbone[0]" in proc.stderr


def test_env_default_syntax(cli, write_spec, monkeypatch):
    monkeypatch.delenv("MTL_TEST_UNSET_ROOT", raising=False)
    path = write_spec(
        "name: t\ndata:\n  age: {kind: chalearn, root: '${MTL_TEST_UNSET_ROOT:-/data/chalearn}'}\n"
    )
    result = cli("plan", str(path), "--offline", "--format", "json")
    assert result.code == 0, result.err
    assert "/data/chalearn" in result.out


def test_an_empty_variable_takes_the_default_as_in_the_shell(cli, write_spec, monkeypatch):
    monkeypatch.setenv("MTL_TEST_EMPTY_ROOT", "")
    path = write_spec(
        "name: t\ndata:\n  age: {kind: chalearn, root: '${MTL_TEST_EMPTY_ROOT:-/data/chalearn}'}\n"
    )
    result = cli("plan", str(path), "--offline", "--format", "json")
    assert result.code == 0, result.err
    assert "/data/chalearn" in result.out
    # Without a default it is empty, and an empty root (the working folder) is refused.
    path = write_spec("name: t\ndata:\n  age: {kind: chalearn, root: '${MTL_TEST_EMPTY_ROOT}'}\n")
    result = cli("plan", str(path), "--offline")
    assert result.code == 2
    assert "data.age.root: String should have at least 1 character" in result.err


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("./mlruns", "is a plain file store, which MLflow 3.13+ refuses"),
        ("file:///tmp/mlruns", "is a plain file store, which MLflow 3.13+ refuses"),
        # MLflow answered with its model registry's "unsupported URI", exit 3.
        ("foo://bar", "MLflow has no store for foo://"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_store_to_is_a_clear_error(cli, write_spec, uri, expected):
    path = write_spec("name: t\n")
    result = cli("plan", str(path), "--tracking-uri", uri)
    assert result.code == 2
    assert result.err.startswith(f"error: tracking URI {uri!r}"), result.err
    assert expected in result.err


def test_database_and_server_uris_pass_through():
    for uri in ("postgresql+psycopg2://u@h/db", "mysql://h/db", "https://mlflow.example:443"):
        assert absolute_uri(uri) == uri


def test_offline_with_a_tracking_uri_is_refused_not_ignored(cli, write_spec):
    result = cli("plan", str(write_spec(GOOD)), "--offline", "--tracking-uri", "bogus://x")
    assert result.code == 2
    assert "--offline reads no tracking store" in result.err


def test_a_key_read_by_an_include_rule_that_inherits_it_is_accepted(cli, write_spec):
    # paper.yaml's shape: momentum under adamw at the top, read by an sgd include rule.
    text = GOOD.replace(
        "grid:\n", "grid:\n  include: [{tasks: [[age]], train: {optimizer: {name: sgd}}}]\n"
    )
    result = cli(
        "plan", str(write_spec(text + "train: {optimizer: {momentum: 0.5}}\n")), "--offline"
    )
    assert result.code == 0, result.err


def test_age_loss_is_read_by_a_reference_model_with_a_regression_head(cli, write_spec):
    # SSR-Net brings its own (regression) age head, which reads age_loss under a dex sweep.
    text = (
        "name: t\ntrain: {age_head: dex, age_loss: smooth_l1}\n"
        "grid: {tasks: [singles], include: [{label: SSR, backbone: [ssrnet], tasks: [[age]]}]}\n"
    )
    assert cli("plan", str(write_spec(text)), "--offline").code == 0


def test_an_error_caused_by_an_override_elsewhere_in_its_section_names_it(cli, write_spec):
    path = write_spec(GOOD)
    result = cli("plan", str(path), "--offline", "--set", "train.schedule.name=step")
    assert result.code == 2
    assert "(with --set train.schedule.name=step): train.schedule.step_size" in result.err
    assert "a step_size below 10, or the constant schedule" in result.err


def test_an_unlabelled_include_repeating_a_reference_model_is_refused(cli, write_spec):
    text = (
        "name: t\ngrid:\n  tasks: [singles]\n  include:\n"
        "    - {label: R, backbone: [resnet34], tasks: [[age]]}\n"
        "    - {backbone: [resnet34], tasks: [[age]]}\n"
    )
    result = cli("plan", str(write_spec(text)), "--offline")
    assert result.code == 2
    assert "grid.include[1]: repeats resnet34/age/none/s0, the trial of reference model 'R'" in (
        result.err
    )
