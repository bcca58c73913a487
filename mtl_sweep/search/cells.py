"""Cells of a tuned sweep, their search trials and their final trials.

A cell is a grid point without its seed (tasks, backbone, pretraining, weighting, and the
weights and train settings the search does not set). Every cell is searched apart: its
own samples, searcher state and early-stopping brackets. A search trial trains the cell
with one sample's values at `search.seed`; its key hashes that config (kind `search`), so
it is the cell plus the sampled values. The final trials retrain the winning values with
every seed of `grid.seed`: ordinary trials, whose keys hash the chosen values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtl_core import contract as C
from mtl_core.contract import run_name
from mtl_core.trial import TrialConfig, trial_key
from mtl_sweep.expand import Plan, Trial
from mtl_sweep.search.space import Values, applied, apply_values, draw_samples
from mtl_sweep.spec.search import WEIGHT_PREFIX, SearchSpec


@dataclass(frozen=True)
class SearchTrial:
    """One sample of one cell: trained at the full budget unless its scheduler stops it."""

    cell: str  # the cell's id
    index: int  # sample index within the cell (0-based; the same values in every cell)
    values: Values  # the sample as drawn (weights a cell does not train are not applied)
    config: TrialConfig  # kind search

    @property
    def key(self) -> str:
        """The search trial's key: a hash of its config (the cell plus applied values)."""
        return self.config.key

    @property
    def name(self) -> str:
        """Run name, e.g. `search/resnet18/age/none/3`."""
        c = self.config
        stage = c.pretrain.stage if c.pretrain else "none"
        return (
            "search/" + run_name(c.backbone, c.tasks, stage, None, c.weighting) + f"/{self.index}"
        )

    @property
    def pretrain_key(self) -> str | None:
        """The pretraining job it starts from."""
        return self.config.pretrain.key if self.config.pretrain else None


@dataclass(frozen=True)
class SearchCell:
    """A grid point without its seed: its trials (one per seed) and how it is searched."""

    id: str
    trials: tuple[Trial, ...]  # the grid's, untuned, one per seed
    search: SearchSpec

    @property
    def first(self) -> Trial:
        """Its first trial (tasks, backbone, pretraining and weights are the cell's)."""
        return self.trials[0]

    @property
    def name(self) -> str:
        """Readable name, e.g. `resnet18/age+gender+emotion+smile/none`."""
        t = self.first
        c = t.config
        return run_name(c.backbone, c.tasks, t.pretrain, None, c.weighting, c.loss_weights)

    @property
    def seeds(self) -> list[int]:
        """The seeds of its final runs (grid.seed)."""
        return [t.config.seed for t in self.trials]

    def sample(self, index: int, values: Values) -> SearchTrial:
        """Search trial `index` with these values."""
        config = apply_values(self.first.config, values, kind=C.KIND_SEARCH, seed=self.search.seed)
        return SearchTrial(self.id, index, values, config)

    def samples(self, count: int | None = None) -> list[SearchTrial]:
        """The `random` search's samples 0 .. count-1 (default: search.samples)."""
        count = self.search.samples if count is None else count
        return [self.sample(i, v) for i, v in enumerate(draw_samples(self.search, count))]

    def finals(self, values: Values) -> list[Trial]:
        """The final trials: every seed of the cell, trained with the chosen values."""
        return [Trial(apply_values(t.config, values)) for t in self.trials]

    def applied(self, values: Values) -> Values:
        """The values that change this cell's trials."""
        return applied(values, self.first.config)


def cell_id(config: TrialConfig, search: SearchSpec) -> str:
    """The cell's id: a hash of its trials' identity without the seed and the searched
    settings (so changing a searched setting's default does not start a new search)."""
    ident: dict[str, Any] = config.identity()
    ident.pop("seed")
    for key in search.space:
        if key.startswith(WEIGHT_PREFIX):
            ident["loss_weights"].pop(key.removeprefix(WEIGHT_PREFIX), None)
            continue
        *parents, leaf = key.split(".")
        node = ident["train"]
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return trial_key({"cell": ident})


def search_cells(plan: Plan) -> list[SearchCell]:
    """The plan's trials grouped into cells, in plan order (every trial is in one)."""
    search = plan.spec.search
    assert search is not None, "only a spec with a search block has cells"
    groups: dict[str, list[Trial]] = {}
    for trial in plan.trials:
        groups.setdefault(cell_id(trial.config, search), []).append(trial)
    return [SearchCell(cid, tuple(ts), search) for cid, ts in groups.items()]
