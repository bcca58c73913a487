"""Grid expansion: a validated spec becomes pretraining jobs and keyed trials.

Rules, in order:
1. The main grid is the product of grid.tasks x backbone x pretrain x weighting x
   weights x seed. Cells matching an `exclude` rule are dropped.
2. `include` rules add small grids (omitted axes take the main grid's values).
3. Weights: `fixed` takes each weight vector, restricted to the trial's own tasks; a
   lattice item gives each task set its own vectors (`spec.weights`). A zero weight
   removes that task, so a lattice vertex collapses into the smaller set's cell. A
   single-task trial always trains with weight 1 and no weighting strategy. Adaptive
   strategies ignore weight vectors (all start at 1).
4. Trials that are identical after these rules collapse into one; the plan counts why.

Each trial is a `TrialConfig` built here, once. Its key is a short hash of its identity
(`TrialConfig.identity`), so it ignores YAML key order and grid order, and changes with
anything that affects training. Execution-only settings (device, workers, resources,
tracking, retries) never enter it. A pretraining job is one per (stage, backbone, stage
settings); its seed is the stage's own `seed`, not the trial's, so every seed of a cell
shares it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

from mtl_core import contract as C
from mtl_core.backbones import check_image_size, reference_model
from mtl_core.contract import run_name
from mtl_core.errors import SpecError
from mtl_core.settings import TrainSettings
from mtl_core.sources import absolute_source
from mtl_core.tasks import TASKS, TaskSet, expand_task_item, tasks_tag
from mtl_core.trial import PretrainRef, TrialConfig
from mtl_sweep.budget import budget_source, with_reference
from mtl_sweep.spec.schema import CellSpec, MatchSpec, Spec, TrainSpec
from mtl_sweep.spec.validate import merged_train
from mtl_sweep.spec.weights import vectors


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run shared by every trial that names its stage and backbone."""

    config: TrialConfig

    @property
    def key(self) -> str:
        """The job's key."""
        return self.config.key

    @property
    def stage(self) -> str:
        """The stage's name."""
        assert self.config.stage is not None
        return self.config.stage

    @property
    def backbone(self) -> str:
        """The backbone it pretrains."""
        return self.config.backbone

    @property
    def tasks(self) -> TaskSet:
        """The tasks whose heads it trains."""
        return self.config.tasks


@dataclass(frozen=True)
class Trial:
    """One cell of the sweep: its resolved config, and the names the plan shows."""

    config: TrialConfig

    @property
    def key(self) -> str:
        """The trial key."""
        return self.config.key

    @property
    def tasks(self) -> TaskSet:
        """Its tasks, in canonical order."""
        return self.config.tasks

    @property
    def backbone(self) -> str:
        """Its backbone (a torchvision name or a reference model)."""
        return self.config.backbone

    @property
    def pretrain(self) -> str:
        """ "none" or the stage it starts from."""
        return self.config.pretrain.stage if self.config.pretrain else "none"

    @property
    def pretrain_key(self) -> str | None:
        """The key of the pretraining job it starts from."""
        return self.config.pretrain.key if self.config.pretrain else None

    @property
    def weighting(self) -> str:
        """Its loss-weighting strategy."""
        return self.config.weighting

    @property
    def loss_weights(self) -> dict[str, float]:
        """Its fixed loss weights, over its own tasks."""
        return dict(self.config.loss_weights)

    @property
    def seed(self) -> int:
        """Its seed."""
        return self.config.seed

    @property
    def label(self) -> str | None:
        """The reference-model label, or None for the main grid."""
        return self.config.label

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

    @property
    def train_where(self) -> str:
        """Key path of its train settings: the sweep's `train`, or its include rule's."""
        return "train" if self.where == "grid" else f"{self.where}.train"


def expand(spec: Spec, file: str = "<spec>") -> Plan:
    """Expand a validated spec into pretraining jobs and trials (see module docstring)."""
    grid = spec.grid
    cells, n_main, excluded = [], 0, 0
    for cell in _cells(spec, grid, spec.train, None, "grid", file):
        n_main += 1
        if any(_matches(rule, cell) for rule in grid.exclude):
            excluded += 1
            continue
        cells.append(cell)
    n_included = 0
    for i, rule in enumerate(grid.include):
        train = merged_train(spec.train, rule.train, file, f"grid.include[{i}].train")
        for cell in _cells(spec, rule, train, rule.label, f"grid.include[{i}]", file):
            n_included += 1
            cells.append(cell)

    jobs: dict[str, PretrainJob] = {}
    trials: dict[str, Trial] = {}
    why: dict[str, list[str]] = {}  # key -> the rules that shaped the kept trial
    collapsed: Counter[str] = Counter()
    # What the trials train once zero weights have removed tasks (a task no trial trains
    # must not size the budget).
    weighed = [_weigh(cell, []) for cell in cells]
    trained = {t for w in weighed if w is not None for t in w[0]}
    reference = spec.train.budget.reference or next((t for t in TASKS if t in trained), "age")
    for cell in cells:
        trial, notes = _resolve(
            spec, replace(cell, train=with_reference(cell.train, reference)), jobs, file
        )
        if trial is None:
            collapsed[notes[0]] += 1
        elif trial.key in trials and cell.label != trials[trial.key].label:
            # One run cannot be both: the report would silently lack one of them.
            kept = trials[trial.key]
            if cell.label is None:
                raise SpecError(
                    file,
                    cell.where,
                    f"repeats {kept.name}, the trial of reference model {kept.label!r}; "
                    f"label it {kept.label!r} too or change its settings",
                )
            raise SpecError(
                file,
                f"{cell.where}.label",
                f"the reference model {cell.label!r} is the same trial as {kept.name}"
                f" ({kept.label or 'main grid'}); give it settings of its own or drop the label",
            )
        elif trial.key in trials:
            # Name the rule that made the two cells equal: this cell's, else the kept one's.
            reasons = notes or why[trial.key] or ["identical to another cell"]
            collapsed[reasons[0]] += 1
        else:
            trials[trial.key] = trial
            why[trial.key] = notes
    if not trials:  # a sweep of nothing would "succeed" with empty tables
        raise SpecError(
            file,
            "grid.exclude" if excluded else "grid",
            f"no trial is left: {excluded} of {n_main} cell(s) excluded"
            + "".join(f"; {n} collapsed: {why}" for why, n in collapsed.items()),
        )
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


def _cells(spec: Spec, rule: Any, train: TrainSpec, label: str | None, where: str, file: str):
    grid = spec.grid
    tasksets: list[TaskSet] = []
    for item in _axis(rule, grid, "tasks"):
        tasksets.extend(expand_task_item(item))
    seen: set[TaskSet] = set()
    task_flags = []
    for ts in tasksets:
        task_flags.append((ts, ts in seen))
        seen.add(ts)
    items = _axis(rule, grid, "weights")
    items_where = (
        f"{where}.weights" if getattr(rule, "weights", None) is not None else "grid.weights"
    )
    axes = product(
        _axis(rule, grid, "backbone"),
        _axis(rule, grid, "pretrain"),
        task_flags,
        _axis(rule, grid, "weighting"),
    )
    for backbone, pretrain, (tasks, dup), weighting in axes:
        for weights in _weight_vectors(items, tasks, file, items_where):  # a lattice: per set
            for seed in _axis(rule, grid, "seed"):
                yield _Cell(
                    tasks, backbone, pretrain, weighting, weights, seed, train, label, where, dup
                )


def _weight_vectors(items: list[Any], tasks: TaskSet, file: str, where: str):
    for i, item in enumerate(items):
        try:
            yield from vectors(item, tasks)
        except ValueError as exc:
            raise SpecError(file, f"{where}[{i}]", str(exc)) from None


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
        notes.append("an include repeats a planned cell (the grid's or another include's)")
    weighed = _weigh(cell, notes)
    if weighed is None:
        return None, ["all of its tasks have zero weight"]
    tasks, weighting, weights = weighed
    train = _reference_train(cell, tasks, file)
    _check_image_size(cell.backbone, train, file, f"{cell.train_where}.image_size")
    pretrain = None
    if cell.pretrain != "none":
        job = _pretrain_job(spec, cell.pretrain, cell.backbone, train, file)
        jobs.setdefault(job.key, job)
        pretrain = PretrainRef(job.stage, job.key)
    config = TrialConfig(
        kind=C.KIND_TRIAL,
        tasks=tasks,
        backbone=cell.backbone,
        weighting=weighting,
        loss_weights=weights,
        seed=cell.seed,
        train=_settings(train),
        sources={t: absolute_source(getattr(spec.data, t)) for t in tasks},
        epoch_rule=spec.data.epoch_rule,
        budget_source=budget_source(train, spec.data),
        pretrain=pretrain,
        label=cell.label,
    )
    groups = len(config.source_groups())
    if not config.matched and train.batch_size < groups:
        raise SpecError(
            file,
            f"{cell.train_where}.batch_size",
            f"per_epoch splits each batch across the trial's {groups} sources; "
            f"batch_size {train.batch_size} leaves one without a sample",
        )
    return Trial(config), notes


def _weigh(cell: _Cell, notes: list[str]) -> tuple[TaskSet, str, dict[str, float]] | None:
    """Rule 3: the trial's tasks, weighting and weights (None: every task weighs zero)."""
    tasks, weighting = cell.tasks, cell.weighting
    if weighting == "fixed":
        kept = tuple(t for t in tasks if cell.weights[t] > 0)
        if not kept:
            return None
        if kept != tasks:
            notes.append("a zero weight removed a task")
        if len(kept) == 1:
            notes.append("single-task trials ignore weight vectors")
            return kept, "fixed", {kept[0]: 1.0}
        return kept, "fixed", {t: cell.weights[t] for t in kept}
    if len(tasks) == 1:
        notes.append("single-task trials use no weighting strategy")
        return tasks, "fixed", {tasks[0]: 1.0}
    notes.append("adaptive weighting ignores weight vectors")
    return tasks, weighting, dict.fromkeys(tasks, 1.0)


def _reference_train(cell: _Cell, tasks: TaskSet, file: str) -> TrainSpec:
    """The cell's train settings, with a reference model's age head forced."""
    ref = reference_model(cell.backbone)
    if ref is None:
        return cell.train
    if not set(tasks) <= set(ref.tasks):
        raise SpecError(
            file,
            f"{cell.where}.backbone",
            f"reference model {cell.backbone!r} trains only {'+'.join(ref.tasks)}, "
            f"not {tasks_tag(tasks)}; add it with grid.include and tasks: "
            f"[{', '.join(ref.tasks)}]",
        )
    if cell.train.imagenet_weights and not ref.imagenet_weights:
        raise SpecError(
            file,
            f"{cell.train_where}.imagenet_weights",
            f"reference model {cell.backbone!r} has no ImageNet weights; set it to false",
        )
    return cell.train.model_copy(update={"age_head": ref.age_head})


def _check_image_size(backbone: str, train: TrainSpec, file: str, where: str) -> None:
    """Refuse an input size the backbone cannot read, before a trial fails on it."""
    error = check_image_size(backbone, train.image_size)
    if error is not None:
        raise SpecError(file, where, error)


def _pretrain_job(
    spec: Spec, stage_name: str, backbone: str, train: TrainSpec, file: str
) -> PretrainJob:
    stage = spec.stages[stage_name]
    stage_train = merged_train(train, stage.train, file, f"stages.{stage_name}.train")
    tasks = tuple(t for t in TASKS if t in stage.tasks)
    budget = stage_train.budget
    if "budget" not in stage.train:
        # A stage is sized by its own epochs over its own source, not the sweep's steps.
        budget = budget.model_copy(update={"steps": None, "reference": tasks[0]})
    stage_train = stage_train.model_copy(update={"epochs": stage.epochs, "budget": budget})
    if "image_size" in stage.train:  # else the trial's own size, checked already
        _check_image_size(backbone, stage_train, file, f"stages.{stage_name}.train.image_size")
    ref = reference_model(backbone)
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
    source = absolute_source(stage.source)
    config = TrialConfig(
        kind=C.KIND_PRETRAIN,
        tasks=tasks,
        backbone=backbone,
        weighting="fixed",
        loss_weights=dict.fromkeys(tasks, 1.0),
        seed=stage.seed,
        train=_settings(stage_train),
        sources=dict.fromkeys(tasks, source),
        epoch_rule=spec.data.epoch_rule,
        budget_source=source if budget.rule == "matched" and budget.steps is None else None,
        stage=stage_name,
    )
    return PretrainJob(config)


def _settings(train: TrainSpec) -> TrainSettings:
    """The train settings without the execution ones (they travel in `Execution`)."""
    return TrainSettings.model_validate(train.model_dump(include=set(TrainSettings.model_fields)))
