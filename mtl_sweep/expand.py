"""Grid expansion: a validated spec becomes pretraining jobs and keyed trials.

Rules, in order:
1. The main grid is the product of grid.tasks x backbone x pretrain x weighting x
   weights x seed. Cells matching an `exclude` rule are dropped.
2. `include` rules add small grids (omitted axes take the main grid's values).
3. Weights: `fixed` takes each weight vector, restricted to the trial's own tasks; a
   zero weight removes that task. A single-task trial always trains with weight 1 and
   no weighting strategy. Adaptive strategies ignore weight vectors (all start at 1).
4. Trials that are identical after these rules collapse into one; the plan counts why.

A trial's key is a short hash of its canonical configuration (`trial_key`), so it
ignores YAML key order and grid order, and changes with anything that affects
training. Execution-only settings (device, workers, resources, tracking, retries)
never enter it. A pretraining job is one per (stage, backbone, stage settings); its
seed is the stage's own `seed`, not the trial's, so every seed of a cell shares it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from mtl_sweep.contract import run_name
from mtl_sweep.errors import SpecError
from mtl_sweep.models import REFERENCE_MODELS
from mtl_sweep.spec import (
    EXECUTION_ONLY_TRAIN_KEYS,
    SYNTHETIC_FORMAT,
    CellSpec,
    MatchSpec,
    Spec,
    TrainSpec,
)
from mtl_sweep.tasks import TASKS, tasks_tag
from mtl_sweep.tasksets import TaskSet, expand_task_item
from mtl_sweep.validate import merged_train, weight_vector

KEY_LENGTH = 12  # hex characters of sha256; collisions are negligible at sweep sizes


def trial_key(canonical: dict[str, Any]) -> str:
    """Short hash of a canonical config: sha256 of its sorted-key JSON."""
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run shared by every trial that names its stage and backbone."""

    key: str
    stage: str
    backbone: str
    tasks: TaskSet
    config: dict[str, Any]  # canonical: everything that affects training


@dataclass(frozen=True)
class Trial:
    """One cell of the sweep, as plain values."""

    key: str
    tasks: TaskSet
    backbone: str
    pretrain: str  # "none" or a stage name
    pretrain_key: str | None
    weighting: str
    loss_weights: dict[str, float]  # over the trial's own tasks
    seed: int
    label: str | None  # reference-model label, or None for the main grid
    config: dict[str, Any]  # canonical: everything that affects training

    @property
    def name(self) -> str:
        """The run name, e.g. `resnet18/age+gender/imdb_wiki/s0`."""
        return run_name(
            self.backbone, self.tasks, self.pretrain, self.seed, self.weighting, self.loss_weights
        )

    @property
    def is_reference(self) -> bool:
        """True for trials added by a labelled include rule (reference models)."""
        return self.label is not None


@dataclass
class Plan:
    """The expansion of one spec."""

    spec: Spec
    jobs: list[PretrainJob]
    trials: list[Trial]
    cells: int  # main-grid cells before exclusion
    excluded: int
    included: int  # cells added by include rules
    collapsed: Counter[str] = field(default_factory=Counter)  # reason -> cells merged away

    @property
    def main(self) -> list[Trial]:
        """Trials of the main grid (and unlabelled includes)."""
        return [t for t in self.trials if not t.is_reference]

    @property
    def reference(self) -> list[Trial]:
        """Reference-model trials, counted separately."""
        return [t for t in self.trials if t.is_reference]

    def job(self, key: str) -> PretrainJob:
        """The pretraining job with this key."""
        return next(j for j in self.jobs if j.key == key)


@dataclass(frozen=True)
class _Cell:
    tasks: TaskSet
    backbone: str
    pretrain: str
    weighting: str
    weights: dict[str, float]
    seed: int
    train: TrainSpec
    label: str | None
    where: str  # key path of the rule that made it, for errors
    duplicate_taskset: bool


def expand(spec: Spec, file: str = "<spec>") -> Plan:
    """Expand a validated spec into pretraining jobs and trials (see module docstring)."""
    grid = spec.grid
    cells, n_main, excluded = [], 0, 0
    for cell in _cells(spec, grid, spec.train, None, "grid"):
        n_main += 1
        if any(_matches(rule, cell) for rule in grid.exclude):
            excluded += 1
            continue
        cells.append(cell)
    n_included = 0
    for i, rule in enumerate(grid.include):
        train = merged_train(spec.train, rule.train, file, f"grid.include[{i}].train")
        for cell in _cells(spec, rule, train, rule.label, f"grid.include[{i}]"):
            n_included += 1
            cells.append(cell)

    jobs: dict[str, PretrainJob] = {}
    trials: dict[str, Trial] = {}
    why: dict[str, list[str]] = {}  # key -> the rules that shaped the kept trial
    collapsed: Counter[str] = Counter()
    for cell in cells:
        trial, notes = _resolve(spec, cell, jobs, file)
        if trial is None:
            collapsed[notes[0]] += 1
        elif trial.key in trials:
            # Name the rule that made the two cells equal: this cell's, else the kept one's.
            reasons = notes or why[trial.key] or ["identical to another cell"]
            collapsed[reasons[0]] += 1
        else:
            trials[trial.key] = trial
            why[trial.key] = notes
    used = {t.pretrain_key for t in trials.values()}
    return Plan(
        spec=spec,
        jobs=[j for k, j in jobs.items() if k in used],
        trials=list(trials.values()),
        cells=n_main,
        excluded=excluded,
        included=n_included,
        collapsed=collapsed,
    )


def _axis(rule: CellSpec | Any, grid: Any, name: str) -> list[Any]:
    value = getattr(rule, name)
    return getattr(grid, name) if value is None else value


def _cells(spec: Spec, rule: Any, train: TrainSpec, label: str | None, where: str):
    grid = spec.grid
    tasksets: list[TaskSet] = []
    for item in _axis(rule, grid, "tasks"):
        tasksets.extend(expand_task_item(item))
    seen: set[TaskSet] = set()
    task_flags = []
    for ts in tasksets:
        task_flags.append((ts, ts in seen))
        seen.add(ts)
    axes = product(
        _axis(rule, grid, "backbone"),
        _axis(rule, grid, "pretrain"),
        task_flags,
        _axis(rule, grid, "weighting"),
        [weight_vector(w) for w in _axis(rule, grid, "weights")],
        _axis(rule, grid, "seed"),
    )
    for backbone, pretrain, (tasks, dup), weighting, weights, seed in axes:
        yield _Cell(tasks, backbone, pretrain, weighting, weights, seed, train, label, where, dup)


def _matches(rule: MatchSpec, cell: _Cell) -> bool:
    if rule.tasks is not None:
        sets = {ts for item in rule.tasks for ts in expand_task_item(item)}
        if cell.tasks not in sets:
            return False
    return all(
        getattr(rule, axis) is None or getattr(cell, axis) in getattr(rule, axis)
        for axis in ("backbone", "pretrain", "weighting", "seed")
    )


def _resolve(
    spec: Spec, cell: _Cell, jobs: dict[str, PretrainJob], file: str
) -> tuple[Trial | None, list[str]]:
    notes = ["duplicate task set in grid.tasks"] if cell.duplicate_taskset else []
    if cell.label is not None:
        notes.append("include repeats a grid cell")
    tasks, weighting = cell.tasks, cell.weighting
    if weighting == "fixed":
        kept = tuple(t for t in tasks if cell.weights[t] > 0)
        if not kept:
            return None, ["all of its tasks have zero weight"]
        if kept != tasks:
            notes.append("a zero weight removed a task")
        tasks = kept
        weights = {t: cell.weights[t] for t in tasks}
        if len(tasks) == 1:
            notes.append("single-task trials ignore weight vectors")
            weights = {tasks[0]: 1.0}
    elif len(tasks) == 1:
        notes.append("single-task trials use no weighting strategy")
        weighting, weights = "fixed", {tasks[0]: 1.0}
    else:
        notes.append("adaptive weighting ignores weight vectors")
        weights = dict.fromkeys(tasks, 1.0)

    train = cell.train
    ref = REFERENCE_MODELS.get(cell.backbone)
    if ref is not None:
        if not set(tasks) <= set(ref.tasks):
            raise SpecError(
                file,
                f"{cell.where}.backbone",
                f"reference model {cell.backbone!r} trains only {'+'.join(ref.tasks)}, "
                f"not {tasks_tag(tasks)}; add it with grid.include and tasks: "
                f"[{', '.join(ref.tasks)}]",
            )
        train = train.model_copy(update={"age_head": ref.age_head})
        if train.image_size < ref.min_image_size:
            raise SpecError(
                file,
                f"{cell.where}.train.image_size",
                f"reference model {cell.backbone!r} needs image_size >= {ref.min_image_size}",
            )
        if train.imagenet_weights and not ref.imagenet_weights:
            raise SpecError(
                file,
                f"{cell.where}.train.imagenet_weights",
                f"reference model {cell.backbone!r} has no ImageNet weights; set it to false",
            )

    pretrain_ref = None
    if cell.pretrain != "none":
        job = _pretrain_job(spec, cell.pretrain, cell.backbone, train, file)
        jobs.setdefault(job.key, job)
        pretrain_ref = {"stage": job.stage, "key": job.key}

    canonical = {
        "tasks": list(tasks),
        "backbone": cell.backbone,
        "weighting": weighting,
        "loss_weights": weights,
        "seed": cell.seed,
        "train": train_identity(train, tasks, weighting),
        "data": {t: source_identity(getattr(spec.data, t)) for t in tasks},
        "pretrain": pretrain_ref,
    }
    if len({_read_identity(spec, t) for t in tasks}) > 1:
        canonical["epoch_rule"] = spec.data.epoch_rule  # only matters across sources
    trial = Trial(
        key=trial_key(canonical),
        tasks=tasks,
        backbone=cell.backbone,
        pretrain=cell.pretrain,
        pretrain_key=pretrain_ref["key"] if pretrain_ref else None,
        weighting=weighting,
        loss_weights=weights,
        seed=cell.seed,
        label=cell.label,
        config=canonical,
    )
    return trial, notes


def _pretrain_job(
    spec: Spec, stage_name: str, backbone: str, train: TrainSpec, file: str
) -> PretrainJob:
    stage = spec.stages[stage_name]
    stage_train = merged_train(train, stage.train, file, f"stages.{stage_name}.train")
    stage_train = stage_train.model_copy(update={"epochs": stage.epochs})
    tasks = tuple(t for t in TASKS if t in stage.tasks)
    ref = REFERENCE_MODELS.get(backbone)
    if ref is not None:
        # A reference model pretrains only the tasks it has heads for (DEX: age).
        tasks = tuple(t for t in tasks if t in ref.tasks)
        if not tasks:
            raise SpecError(
                file,
                f"stages.{stage_name}.tasks",
                f"reference model {backbone!r} trains only {'+'.join(ref.tasks)}; "
                f"the stage trains none of it",
            )
    canonical = {
        "stage": stage_name,
        "backbone": backbone,
        "tasks": list(tasks),
        "weighting": "fixed",
        "loss_weights": dict.fromkeys(tasks, 1.0),
        "seed": stage.seed,
        "train": train_identity(stage_train, tasks, "fixed"),
        "source": source_identity(stage.source),
    }
    return PretrainJob(trial_key(canonical), stage_name, backbone, tasks, canonical)


def train_identity(train: TrainSpec, tasks: TaskSet, weighting: str) -> dict[str, Any]:
    """The train settings that can change this trial's result, and only those."""
    out = train.model_dump(mode="json", exclude=set(EXECUTION_ONLY_TRAIN_KEYS))
    for strategy in ("dwa", "gradnorm"):
        if weighting != strategy:
            out.pop(strategy)
    if train.optimizer.name != "sgd":
        out["optimizer"].pop("momentum")
    if train.schedule.name != "step":
        out["schedule"].pop("step_size")
        out["schedule"].pop("gamma")
    if "age" not in tasks:
        out.pop("age_head")
        out.pop("age_loss")
    elif train.age_head == "dex":
        out.pop("age_loss")
    return out


def _read_identity(spec: Spec, task: str) -> str:
    """What a task's loader reads: tasks with equal identities share one source."""
    source = source_identity(getattr(spec.data, task))
    if source["kind"] == "synthetic":
        source["format"] = SYNTHETIC_FORMAT[task]  # gender and smile share CelebA
    return json.dumps(source, sort_keys=True)


def source_identity(source: Any) -> dict[str, Any]:
    """A source's settings with its root made absolute (trials run in another directory)."""
    out = source.model_dump(mode="json")
    if "root" in out:
        out["root"] = os.path.normpath(Path(out["root"]).expanduser().absolute())
    return out
