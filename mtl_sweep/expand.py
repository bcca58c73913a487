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

The grid's cells come from grid.py, and resolve.py turns each into its `TrialConfig`
(memoized per expansion, so 48,000 trials expand in seconds).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mtl_core.contract import run_name
from mtl_core.errors import SpecError
from mtl_core.tasks import TASKS
from mtl_core.trial import TrialConfig
from mtl_sweep.grid import Cell, Exclusions, cells, weigh
from mtl_sweep.resolve import Resolver
from mtl_sweep.spec.schema import Spec
from mtl_sweep.spec.validate import merged_train


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run shared by every trial that names its stage and backbone; what
    it trains is `config` (its stage is `config.stage`)."""

    config: TrialConfig

    @property
    def key(self) -> str:
        """The job's key: what the plan, the searcher and the store index it by."""
        return self.config.key


@dataclass(frozen=True)
class Trial:
    """One cell of the sweep: its resolved `config`, and the names the plan shows."""

    config: TrialConfig

    @property
    def key(self) -> str:
        """The trial key: what the plan, the searcher and the store index it by."""
        return self.config.key

    @property
    def pretrain(self) -> str:
        """ "none" or the stage it starts from."""
        return self.config.pretrain.stage if self.config.pretrain else "none"

    @property
    def pretrain_key(self) -> str | None:
        """The key of the pretraining job it starts from."""
        return self.config.pretrain.key if self.config.pretrain else None

    @property
    def name(self) -> str:
        """The run name, e.g. `resnet18/age+gender/imdb_wiki/s0`."""
        c = self.config
        return run_name(c.backbone, c.tasks, self.pretrain, c.seed, c.weighting, c.loss_weights)

    @property
    def is_reference(self) -> bool:
        """True for trials added by a labelled include rule (reference models)."""
        return self.config.label is not None


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


def expand(spec: Spec, file: str = "<spec>") -> Plan:
    """Expand a validated spec into pretraining jobs and trials (see module docstring)."""
    # One pass in rule order makes both the trials and the counts the plan shows (cells,
    # excluded, included, collapsed and why): split up, each part would hand them back.
    grid = spec.grid
    kept: list[Cell] = []
    n_main = excluded = n_included = 0
    excludes = Exclusions(grid.exclude)
    for cell in cells(spec, grid, spec.train, None, "grid", file):
        n_main += 1
        if excludes(cell):
            excluded += 1
        else:
            kept.append(cell)
    for i, rule in enumerate(grid.include):
        train = merged_train(spec.train, rule.train, file, f"grid.include[{i}].train")
        for cell in cells(spec, rule, train, rule.label, f"grid.include[{i}]", file):
            n_included += 1
            kept.append(cell)

    # What the trials train once zero weights have removed tasks (a task no trial trains
    # must not size the budget).
    trained = {t for c in kept if (w := weigh(c, [])) is not None for t in w[0]}
    reference = spec.train.budget.reference or next((t for t in TASKS if t in trained), "age")
    resolver = Resolver(spec, file, reference)
    trials: dict[str, Trial] = {}
    why: dict[str, list[str]] = {}  # key -> the rules that shaped the kept trial
    collapsed: Counter[str] = Counter()
    for cell in kept:
        notes = ["duplicate task set in grid.tasks"] if cell.duplicate_taskset else []
        if cell.label is not None:
            notes.append("an include repeats a planned cell (the grid's or another include's)")
        weighed = weigh(cell, notes)
        if weighed is None:
            collapsed["all of its tasks have zero weight"] += 1
            continue
        trial = Trial(resolver.trial(cell, *weighed))
        if trial.key not in trials:
            trials[trial.key] = trial
            why[trial.key] = notes
            continue
        _check_one_label(trials[trial.key], cell, file)
        # Name the rule that made the two cells equal: this cell's, else the kept one's.
        reasons = notes or why[trial.key] or ["identical to another cell"]
        collapsed[reasons[0]] += 1
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
        jobs=[PretrainJob(j) for k, j in resolver.jobs.items() if k in used],
        trials=list(trials.values()),
        cells=n_main,
        excluded=excluded,
        included=n_included,
        collapsed=collapsed,
    )


def _check_one_label(kept: Trial, cell: Cell, file: str) -> None:
    """Refuse a cell that is the same trial as a kept one with another label: one run
    cannot be both, and the report would silently lack one of them."""
    if cell.label == kept.config.label:
        return
    if cell.label is None:
        raise SpecError(
            file,
            cell.where,
            f"repeats {kept.name}, the trial of reference model {kept.config.label!r}; "
            f"label it {kept.config.label!r} too or change its settings",
        )
    raise SpecError(
        file,
        f"{cell.where}.label",
        f"the reference model {cell.label!r} is the same trial as {kept.name}"
        f" ({kept.config.label or 'main grid'}); give it settings of its own or drop the label",
    )
