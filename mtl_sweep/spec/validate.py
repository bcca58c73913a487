"""Meaning checks on a structurally valid spec, each naming its exact key path."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import ValidationError

from mtl_core.backbones import check_backbone, reference_model
from mtl_core.contract import flatten_params
from mtl_core.errors import SpecError, format_loc
from mtl_core.settings import error_path
from mtl_core.sources import SOURCE_TASKS
from mtl_core.tasks import TASKS, expand_task_item
from mtl_core.weightings import WEIGHTINGS
from mtl_sweep.spec.schema import EXECUTION_ONLY_TRAIN_KEYS, Spec, TrainSpec
from mtl_sweep.spec.search import check_search
from mtl_sweep.spec.suggest import unknown_key_message
from mtl_sweep.spec.weights import check_item

STAGE_SOURCE_KINDS: tuple[str, ...] = ("imdb_wiki", "synthetic")


def merged_train(base: TrainSpec, overrides: dict[str, Any], file: str, where: str) -> TrainSpec:
    """Apply partial `train` overrides (from a stage or include rule) to the sweep's train.

    Execution settings apply to the whole sweep, and a stage sets its epochs itself, so
    overriding those here is an error rather than silently ignored.
    """
    if not overrides:
        return base
    for key in overrides:
        if key in EXECUTION_ONLY_TRAIN_KEYS:
            raise SpecError(
                file,
                f"{where}.{key}",
                f"an execution setting applies to the whole sweep; set train.{key} instead",
            )
        if key == "epochs" and where.startswith("stages."):
            raise SpecError(file, f"{where}.epochs", "set the stage's own `epochs` instead")
    merged = _deep_merge(base.model_dump(), overrides)
    try:
        return TrainSpec.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = format_loc([where, *error_path(first)])
        msg = first["msg"].removeprefix("Value error, ")  # our validators' own words
        if first["type"] == "extra_forbidden":
            msg = unknown_key_message(TrainSpec, error_path(first))
        raise SpecError(file, loc, msg) from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class _Block(NamedTuple):
    """Trials that share one `train` block: the sweep's, a stage's or an include rule's."""

    train: TrainSpec
    weightings: set[str]
    backbones: set[str]
    written: dict[str, Any]  # the block's own train keys ({} for the sweep's: see below)
    where: str


def check_spec(spec: Spec, file: str) -> None:
    """Raise SpecError for the first meaning problem found in `spec`."""
    # Over 60 lines on purpose: a flat list of independent checks in the order a reader
    # meets the keys (data, device, grid, stages, includes), each failing on one line;
    # splitting it would scatter that order across helpers that share only `fail`.

    def fail(path: str, message: str) -> None:
        raise SpecError(file, path, message)

    for task in TASKS:
        kind = getattr(spec.data, task).kind
        if task not in SOURCE_TASKS[kind]:
            carriers = [k for k, ts in SOURCE_TASKS.items() if task in ts]
            fail(f"data.{task}.kind", f"{kind!r} has no {task} labels; use one of {carriers}")

    if spec.train.device.startswith("cuda") and spec.resources.gpu == 0:
        fail(
            "train.device",
            f"{spec.train.device} with resources.gpu 0: Ray would reserve no GPU, so every "
            "trial would share the card unaccounted; set resources.gpu (a fraction such as "
            "0.25 puts four trials on one card)",
        )
    rules = {spec.train.budget.rule}  # budget rules in use: the epoch rule needs per_epoch
    grid = spec.grid
    blocks: list[_Block] = []  # the stages' and include rules' train blocks, merged
    every_backbone = set(grid.backbone).union(*(r.backbone or [] for r in grid.include))
    for name, stage in spec.stages.items():
        where = f"stages.{name}"
        if name == "none":
            fail(where, "'none' is reserved for 'no pretraining'; pick another stage name")
        if not str(name).strip():
            fail("stages", "a stage needs a name (it names the pretrain column and its runs)")
        if stage.source.kind not in STAGE_SOURCE_KINDS:
            fail(f"{where}.source.kind", f"a stage reads one of {list(STAGE_SOURCE_KINDS)}")
        if not stage.tasks:
            fail(f"{where}.tasks", "a stage trains at least one task")
        for i, task in enumerate(stage.tasks):
            if task not in SOURCE_TASKS["imdb_wiki"]:
                fail(f"{where}.tasks[{i}]", f"IMDB-WIKI carries {list(SOURCE_TASKS['imdb_wiki'])}")
        stage_train = merged_train(spec.train, stage.train, file, f"{where}.train")
        _check_budget(stage_train, f"{where}.train", fail)
        # Where the stage writes its schedule: one inherited from the trials is left alone
        # (`--set train.schedule.warmup_epochs=1` must not fail on a 1-epoch stage).
        if "schedule" in stage.train:
            _check_schedule(stage_train.schedule, stage.epochs, f"{where}.train", fail)
        rules.add(stage_train.budget.rule)
        # A stage trains `fixed`, once per backbone of the sweep.
        blocks.append(_Block(stage_train, {"fixed"}, every_backbone, stage.train, f"{where}.train"))

    _check_budget(spec.train, "train", fail)
    _check_schedule(spec.train.schedule, spec.train.epochs, "train", fail)
    _check_axes(grid, "grid", spec, fail)
    for i, rule in enumerate(grid.include):
        _check_axes(rule, f"grid.include[{i}]", spec, fail)
        train = merged_train(spec.train, rule.train, file, f"grid.include[{i}].train")
        _check_budget(train, f"grid.include[{i}].train", fail)
        if "schedule" in rule.train or "epochs" in rule.train:
            _check_schedule(train.schedule, train.epochs, f"grid.include[{i}].train", fail)
        rules.add(train.budget.rule)
        weightings, backbones = (
            set(rule.weighting or grid.weighting),
            set(rule.backbone or grid.backbone),
        )
        blocks.append(_Block(train, weightings, backbones, rule.train, f"grid.include[{i}].train"))
    _check_read(spec, blocks, fail)
    if spec.search is not None:
        _check_search(spec, file, fail)
    for i, rule in enumerate(grid.exclude):
        _check_axes(rule, f"grid.exclude[{i}]", spec, fail)
        if all(getattr(rule, k) is None for k in type(rule).model_fields):
            fail(f"grid.exclude[{i}]", "an exclude rule needs at least one key to match")

    if "epoch_rule" in spec.data.model_fields_set and "per_epoch" not in rules:
        fail(
            "data.epoch_rule",
            "sizes an epoch under budget.rule per_epoch, and every trial here has a matched "
            "budget, which never reads it; remove it",
        )

    for i, tasks in enumerate(spec.debug.fail_tasks):
        try:
            expand_task_item(tasks)
        except ValueError as exc:
            fail(f"debug.fail_tasks[{i}]", str(exc))


def _check_budget(train: TrainSpec, where: str, fail: Any) -> None:
    """Settings that belong to the other budget rule are refused, never ignored."""
    if train.budget.rule == "matched" and train.steps_per_epoch is not None:
        fail(
            f"{where}.steps_per_epoch",
            "applies to budget.rule per_epoch; under matched set train.budget.steps instead",
        )
    if train.budget.rule == "per_epoch" and train.eval_every is not None:
        fail(f"{where}.eval_every", "per_epoch validates after every epoch; remove eval_every")
    if train.budget.rule == "per_epoch" and (train.budget.steps or train.budget.reference):
        fail(f"{where}.budget", "steps and reference size a matched budget; rule is per_epoch")


def _check_read(spec: Spec, blocks: list[_Block], fail: Any) -> None:
    """A train key written where none of the trials that inherit it reads it is refused:
    momentum without sgd, a step schedule's knobs on another schedule, and so on. `blocks`
    are the stages' and include rules' own train blocks."""
    written = [set(flatten_params(b.written)) for b in blocks]
    unread = [_unread(b) for b in blocks]
    for block, paths, skipped in zip(blocks, written, unread, strict=True):
        for path in sorted(paths & skipped.keys()):
            fail(f"{block.where}.{path}", skipped[path])
    grid = spec.grid
    top = _unread(_Block(spec.train, set(grid.weighting), set(grid.backbone), {}, "train"))
    for path in _paths_set(spec.train):
        # Refused unless a stage or an include rule that inherits it (does not write it)
        # reads it.
        heirs = [
            skipped for paths, skipped in zip(written, unread, strict=True) if path not in paths
        ]
        if path in top and all(path in skipped for skipped in heirs):
            fail(f"train.{path}", top[path])


def _check_search(spec: Spec, file: str, fail: Any) -> None:
    """The search block against the grid's train settings and cells (spec/search.py)."""
    grid = spec.grid
    top = _Block(spec.train, set(grid.weighting), set(grid.backbone), {}, "train")
    weighted: set[str] = set()
    for rule in [grid, *grid.include]:
        if "fixed" in (rule.weighting or grid.weighting):
            for item in rule.tasks or grid.tasks:
                weighted.update(t for ts in expand_task_item(item) if len(ts) > 1 for t in ts)
    check_search(
        spec.search,
        spec.train,
        _unread(top),
        weighted,
        lambda over: merged_train(spec.train, over, file, "search.space"),
        fail,
    )


def _check_schedule(schedule: Any, epochs: int, where: str, fail: Any) -> None:
    """A warmup that never ends, or a step decay that never comes, is refused."""
    warm = schedule.warmup_epochs
    if warm >= epochs:
        fail(
            f"{where}.schedule.warmup_epochs",
            f"warmup of {warm} epoch(s) in a schedule of {epochs}: the learning rate would "
            "never reach its peak",
        )
    if schedule.name == "step" and schedule.step_size >= epochs - warm:
        fail(
            f"{where}.schedule.step_size",
            f"a step every {schedule.step_size} epoch(s) after {warm} of warmup, in "
            f"{epochs}: the learning rate would never decay (a step_size below "
            f"{epochs - warm}, or the constant schedule)",
        )


def _unread(block: _Block) -> dict[str, str]:
    """Train key paths that the block's trials never read -> why."""
    train, out = block.train, {}
    opt, schedule = train.optimizer.name, train.schedule.name
    if opt != "sgd":
        out["optimizer.momentum"] = f"read by sgd only, and the optimizer is {opt}: remove it"
    if schedule != "step":
        for key in ("step_size", "gamma"):
            out[f"schedule.{key}"] = (
                f"read by the step schedule only, and the schedule is {schedule}: remove it"
            )
    # A reference model brings its own age head (resolve.Resolver._reference_train).
    heads = {getattr(reference_model(b), "age_head", train.age_head) for b in block.backbones}
    if "regression" not in heads:
        out["age_loss"] = "read by the regression age head only (dex uses cross-entropy): remove it"
    used = ", ".join(sorted(block.weightings))
    for weighting, keys in (("dwa", ("temperature",)), ("gradnorm", ("alpha", "lr"))):
        if weighting not in block.weightings:
            for key in keys:
                out[f"{weighting}.{key}"] = (
                    f"read by the {weighting} weighting only, and these trials use {used}: "
                    "remove it"
                )
    if train.affinity.every is None:
        out["affinity.params"] = "read only when affinity.every is set: set it or remove this"
    return out


def _paths_set(model: Any, prefix: str = "") -> list[str]:
    """Key paths a model's values were written at (pydantic's model_fields_set)."""
    out = []
    for key in model.model_fields_set:
        value, path = getattr(model, key), f"{prefix}{key}"
        out += _paths_set(value, f"{path}.") if hasattr(value, "model_fields_set") else [path]
    return out


def _check_axes(rule: Any, where: str, spec: Spec, fail: Any) -> None:
    fields = type(rule).model_fields
    for axis in ("tasks", "backbone", "pretrain", "weighting", "weights", "seed"):
        if axis not in fields:
            continue
        values = getattr(rule, axis)
        if values is None:
            continue
        if not values:
            fail(f"{where}.{axis}", "empty axis: give at least one value (or omit the key)")
        for i, value in enumerate(values):
            path = f"{where}.{axis}[{i}]"
            problem = _axis_problem(axis, value, spec)
            if problem:
                fail(path, problem)


def _axis_problem(axis: str, value: Any, spec: Spec) -> str | None:
    try:
        if axis == "tasks":
            expand_task_item(value)
        elif axis == "weights":
            check_item(value)
    except ValueError as exc:
        return str(exc)
    if axis == "backbone":
        return check_backbone(value)
    if axis == "pretrain" and value != "none" and value not in spec.stages:
        stages = ", ".join(spec.stages) or "none defined"
        return f"{value!r} names no stage; use 'none' or a key of stages ({stages})"
    if axis == "weighting" and value not in WEIGHTINGS:
        return f"unknown weighting {value!r}; known: {', '.join(WEIGHTINGS.names())}"
    return None
