"""A grid cell becomes a `TrialConfig`, and a pretraining stage a job's `TrialConfig`.

Cells share their train settings: every cell of the main grid holds the sweep's `train`,
every cell of an include rule its merged `train`. So the pydantic work (copies,
re-validation into `TrainSettings`, absolute sources) is done once per distinct settings
object and backbone, not once per cell: a `Resolver` lives for one expansion and memoizes
by object identity (it holds the objects, so an id cannot be reused meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from mtl_core import contract as C
from mtl_core.backbones import check_image_size, reference_model
from mtl_core.errors import SpecError
from mtl_core.settings import TrainSettings
from mtl_core.sources import Source, absolute_source
from mtl_core.tasks import TASKS, TaskSet, tasks_tag
from mtl_core.trial import PretrainRef, TrialConfig
from mtl_sweep.budget import budget_source, with_reference
from mtl_sweep.grid import Cell
from mtl_sweep.spec.schema import Spec, TrainSpec
from mtl_sweep.spec.validate import merged_train

T = TypeVar("T")


class Resolver:
    """Resolves the cells of one spec; see the module docstring for its memo."""

    def __init__(self, spec: Spec, file: str, reference: str) -> None:
        self.spec, self.file, self.reference = spec, file, reference
        self._memo: dict[Hashable, tuple[Any, Any]] = {}
        self.jobs: dict[str, TrialConfig] = {}  # key -> pretraining job, in plan order

    def _once(self, key: tuple[Hashable, ...], of: Any, make: Callable[[], T]) -> T:
        """`make()`, once per `key` and identity of the object `of` (held, so that its id
        is not reused while the memo lives)."""
        full = (*key, id(of))
        hit = self._memo.get(full)
        if hit is None:
            hit = self._memo[full] = (of, make())
        return hit[1]

    def trial(
        self, cell: Cell, tasks: TaskSet, weighting: str, weights: dict[str, float]
    ) -> TrialConfig:
        """The TrialConfig of a weighed cell (rule 3 applied); registers its job."""
        spec, file = self.spec, self.file
        base = self._once(("ref",), cell.train, lambda: with_reference(cell.train, self.reference))
        train = self._reference_train(cell, base, tasks)
        self._check_image_size(cell.backbone, train, f"{cell.train_where}.image_size")
        pretrain = None
        if cell.pretrain != "none":
            job = self._once(
                ("job", cell.pretrain, cell.backbone), train, lambda: self._job(cell, train)
            )
            self.jobs.setdefault(job.key, job)
            pretrain = PretrainRef(cell.pretrain, job.key)
        config = TrialConfig(
            kind=C.KIND_TRIAL,
            tasks=tasks,
            backbone=cell.backbone,
            weighting=weighting,
            loss_weights=weights,
            seed=cell.seed,
            train=self._settings(train),
            sources={t: self._source(t) for t in tasks},
            epoch_rule=spec.data.epoch_rule,
            budget_source=self._once(("budget",), train, lambda: budget_source(train, spec.data)),
            pretrain=pretrain,
            label=cell.label,
        )
        if not config.matched and train.batch_size < len(config.source_groups()):
            raise SpecError(
                file,
                f"{cell.train_where}.batch_size",
                f"per_epoch splits each batch across the trial's "
                f"{len(config.source_groups())} sources; batch_size {train.batch_size} "
                "leaves one without a sample",
            )
        return config

    def _source(self, task: str) -> Source:
        source = getattr(self.spec.data, task)
        return self._once(("source",), source, lambda: absolute_source(source))

    def _settings(self, train: TrainSpec) -> TrainSettings:
        """The train settings without the execution ones (they travel in `Execution`)."""
        return self._once(
            ("settings",),
            train,
            lambda: TrainSettings.model_validate(
                train.model_dump(include=set(TrainSettings.model_fields))
            ),
        )

    def _reference_train(self, cell: Cell, train: TrainSpec, tasks: TaskSet) -> TrainSpec:
        """The cell's train settings, with a reference model's age head forced."""
        ref = reference_model(cell.backbone)
        if ref is None:
            return train
        if not set(tasks) <= set(ref.tasks):
            raise SpecError(
                self.file,
                f"{cell.where}.backbone",
                f"reference model {cell.backbone!r} trains only {'+'.join(ref.tasks)}, "
                f"not {tasks_tag(tasks)}; add it with grid.include and tasks: "
                f"[{', '.join(ref.tasks)}]",
            )
        if train.imagenet_weights and not ref.imagenet_weights:
            raise SpecError(
                self.file,
                f"{cell.train_where}.imagenet_weights",
                f"reference model {cell.backbone!r} has no ImageNet weights; set it to false",
            )
        return self._once(
            ("age_head", ref.age_head),
            train,
            lambda: train.model_copy(update={"age_head": ref.age_head}),
        )

    def _check_image_size(self, backbone: str, train: TrainSpec, where: str) -> None:
        """Refuse an input size the backbone cannot read, before a trial fails on it."""
        error = check_image_size(backbone, train.image_size)
        if error is not None:
            raise SpecError(self.file, where, error)

    def _job(self, cell: Cell, train: TrainSpec) -> TrialConfig:
        """The pretraining job of `cell`'s stage and backbone, from the trial's settings."""
        spec, file, stage_name, backbone = self.spec, self.file, cell.pretrain, cell.backbone
        stage = spec.stages[stage_name]
        stage_train = merged_train(train, stage.train, file, f"stages.{stage_name}.train")
        tasks = tuple(t for t in TASKS if t in stage.tasks)
        budget = stage_train.budget
        if "budget" not in stage.train:
            # A stage is sized by its own epochs over its own source, not the sweep's steps.
            budget = budget.model_copy(update={"steps": None, "reference": tasks[0]})
        stage_train = stage_train.model_copy(update={"epochs": stage.epochs, "budget": budget})
        if "image_size" in stage.train:  # else the trial's own size, checked already
            where = f"stages.{stage_name}.train.image_size"
            self._check_image_size(backbone, stage_train, where)
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
        return TrialConfig(
            kind=C.KIND_PRETRAIN,
            tasks=tasks,
            backbone=backbone,
            weighting="fixed",
            loss_weights=dict.fromkeys(tasks, 1.0),
            seed=stage.seed,
            train=self._settings(stage_train),
            sources=dict.fromkeys(tasks, source),
            epoch_rule=spec.data.epoch_rule,
            budget_source=source if budget.rule == "matched" and budget.steps is None else None,
            stage=stage_name,
        )
