"""The `search` block: bad search specs are one line and exit 2; good ones expand into
cells whose samples are paired and prefix-stable."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from mtl_sweep.expand import expand
from mtl_sweep.search.cells import search_cells
from mtl_sweep.search.select import SearchResult, winner
from mtl_sweep.spec.load import parse_spec

from .conftest import SWEEPS

SPEC = """\
name: t
train: {epochs: 1, batch_size: 16, image_size: 24}
grid: {tasks: [singles, all], seed: [0, 1]}
search:
  space:
    optimizer.lr: {loguniform: [0.0003, 0.03]}
    optimizer.weight_decay: {loguniform: [0.00001, 0.01]}
  samples: 4
"""


def _spec(*overrides: str):
    return parse_spec(SPEC, "spec.yaml", list(overrides))


BAD = [
    (
        "unread-key",
        ["search.space={optimizer.momentum: {uniform: [0.1, 0.9]}}"],
        "search.space.optimizer.momentum: read by sgd only",
    ),
    (
        "empty-range",
        ["search.space={optimizer.lr: {loguniform: [0.01, 0.01]}}"],
        "search.space.optimizer.lr: empty range [0.01, 0.01]",
    ),
    ("zero-samples", ["search.samples=0"], "search.samples: Input should be greater than 0"),
    (
        "unknown-key",
        ["search.space={optimizer.lrr: {uniform: [0.1, 0.9]}}"],
        "search.space.optimizer.lrr: not a train setting a trial reads",
    ),
    (
        "execution-key",
        ["search.space={device: {choice: [cpu]}}"],
        "search.space.device: not a train setting",
    ),
    (
        "budget-key",
        ["search.space={epochs: {randint: [1, 3]}}"],
        "search.space.epochs: sizes the budget",
    ),
    (
        "weight-of-no-multitask-cell",
        ["grid.tasks=[singles]", "search.space={weights.age: {uniform: [0.5, 2]}}"],
        "search.space.weights.age: no multi-task cell",
    ),
    (
        "value-the-setting-refuses",
        ["search.space={optimizer.momentum: {uniform: [0.5, 1.5]}}", "train.optimizer.name=sgd"],
        "search.space.optimizer.momentum: Input should be less than 1",
    ),
    (
        "two-distributions",
        ["search.space={optimizer.lr: {uniform: [0.1, 0.2], loguniform: [0.1, 0.2]}}"],
        "give exactly one of",
    ),
    ("unknown-scheduler", ["search.scheduler={name: pbt}"], "search.scheduler.name"),
]


@pytest.mark.parametrize(("sets", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_search_spec_exits_2_with_one_line(cli, write_spec, sets, expected):
    path = write_spec(SPEC)
    args = [a for s in sets for a in ("--set", s)]
    result = cli("plan", str(path), "--offline", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert expected in lines[0], lines[0]


@pytest.mark.skipif(importlib.util.find_spec("optuna") is not None, reason="optuna installed")
def test_optuna_without_the_extra_exits_2_with_one_line(cli, write_spec):
    result = cli("plan", str(write_spec(SPEC)), "--offline", "--set", "search.algorithm=optuna")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "search.algorithm: optuna is an optional extra" in line


def test_optuna_without_the_extra_is_refused_even_when_installed(cli, write_spec, monkeypatch):
    """The check itself, whatever this machine has installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    result = cli("plan", str(write_spec(SPEC)), "--offline", "--set", "search.algorithm=optuna")
    assert result.code == 2 and "pip install 'mtl-sweep[optuna]'" in result.err


def test_a_spec_without_search_has_no_search_block():
    assert parse_spec(SPEC.split("search:")[0], "s.yaml").search is None


def test_cells_are_grid_points_without_their_seed():
    cells = search_cells(expand(_spec()))
    assert len(cells) == 5  # four singles and the four-task cell
    assert all(c.seeds == [0, 1] for c in cells)
    assert len({c.id for c in cells}) == 5


def test_every_cell_gets_the_same_sampled_values_under_random():
    cells = search_cells(expand(_spec()))
    drawn = [[s.values for s in c.samples()] for c in cells]
    assert all(d == drawn[0] for d in drawn)
    lrs = [s.config.train.optimizer.lr for s in cells[-1].samples()]
    assert lrs == [v["optimizer.lr"] for v in drawn[0]]
    assert len(set(lrs)) == 4  # four distinct samples, each inside the range
    assert all(0.0003 <= lr <= 0.03 for lr in lrs)


def test_samples_are_prefix_stable_when_samples_grow():
    four = search_cells(expand(_spec()))[0].samples()
    eight = search_cells(expand(_spec("search.samples=8")))[0].samples()
    assert [s.key for s in eight[:4]] == [s.key for s in four]
    assert len({s.key for s in eight}) == 8


def test_a_search_key_is_the_cell_plus_the_sampled_values():
    cell = search_cells(expand(_spec()))[0]
    a, b = (
        cell.sample(0, {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-4}),
        cell.sample(7, {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-4}),
    )
    assert a.key == b.key  # the index does not enter the key, the values do
    c = cell.sample(0, {"optimizer.lr": 0.02, "optimizer.weight_decay": 1e-4})
    assert c.key != a.key
    # a final trial with the same values and seed is another run than the search trial
    finals = cell.finals(a.values)
    assert a.key not in {f.key for f in finals}
    assert [f.config.train.optimizer.lr for f in finals] == [0.01, 0.01]
    assert [f.config.seed for f in finals] == [0, 1]


def test_changing_a_searched_default_keeps_the_cell():
    ids = [c.id for c in search_cells(expand(_spec()))]
    moved = [c.id for c in search_cells(expand(_spec("train.optimizer.lr=0.5")))]
    assert ids == moved
    other = [c.id for c in search_cells(expand(_spec("train.batch_size=8")))]
    assert not set(ids) & set(other)


def test_searched_weights_apply_to_multitask_cells_only():
    spec = _spec("search.space={weights.age: {uniform: [0.5, 2]}}")
    cells = {len(c.first.config.tasks): c for c in search_cells(expand(spec))}
    values = {"weights.age": 0.7}
    assert cells[4].sample(0, values).config.loss_weights["age"] == 0.7
    assert cells[1].applied(values) == {}


def _result(index, objective, stopped=False, cell="A"):
    return SearchResult(cell, index, f"k{index}", f"r{index}", {}, objective, 10, stopped)


def test_the_winner_is_the_best_validation_objective_and_never_a_stopped_trial():
    results = [_result(0, 0.2), _result(1, 0.9, stopped=True), _result(2, 0.5)]
    assert winner(results).index == 2
    assert winner([_result(0, 0.3), _result(1, 0.3)]).index == 0  # ties: the first sample
    assert winner([_result(0, math.nan), _result(1, 0.1, stopped=True)]) is None


def test_plan_shows_cells_samples_rungs_worst_case_steps_and_finals_after_search(cli):
    text = cli("plan", str(SWEEPS / "tuned.yaml"), "--offline")
    assert text.code == 0, text.err
    assert "Search cells" in text.out and "after search" in text.out
    assert "resnet18/age+gender+emotion+smile/none" in text.out
    assert "at most 1,200 search steps over 5 cell(s)" in text.out  # 5 cells x 6 x 40 steps
    doc = cli("plan", str(SWEEPS / "tuned.yaml"), "--offline", "--format", "json")
    search = json.loads(doc.out)["search"]
    (cell,) = [c for c in search["cells"] if c["name"] == "resnet18/age/none"]
    assert cell["samples"] == 6 and cell["rounds"] == 4 and cell["rungs"] == [1]
    assert cell["worst_case_search_steps"] == 240 and cell["final_seeds"] == [0, 1]
    assert {t["done"] for t in json.loads(doc.out)["trials"]} == {"after search"}
    asha = cli(
        "plan",
        str(SWEEPS / "tuned.yaml"),
        "--offline",
        "--format",
        "json",
        "--set",
        "search.scheduler={name: asha, grace_rounds: 1, reduction_factor: 3}",
    )
    assert json.loads(asha.out)["search"]["cells"][0]["rungs"] == [1, 3]
