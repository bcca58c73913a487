"""The optional `search` block: a per-cell hyperparameter search on Ray Tune.

Structure (this module's pydantic models) and meaning (`check_search`) of the block; the
search itself runs in `mtl_sweep.search` and `mtl_sweep.run.tuned`. Imports neither
torch nor ray.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt, model_validator

from mtl_core.settings import Count, Seed, Strict, TrainSettings
from mtl_core.tasks import TASKS

DISTRIBUTIONS = ("loguniform", "uniform", "choice", "randint")
WEIGHT_PREFIX = "weights."  # search key of a fixed loss weight: weights.<task>
# Keys that size the budget: a search compares trials at equal steps, so none is searched.
BUDGET_KEYS = ("epochs", "budget", "eval_every", "steps_per_epoch")


class Distribution(Strict):
    """One searched dimension: exactly one of the four Ray Tune samplers.

    loguniform/uniform: [low, high] with low < high (loguniform: low > 0); randint:
    [low, high) integers with low < high; choice: a non-empty list of distinct values.
    """

    loguniform: list[float] | None = None
    uniform: list[float] | None = None
    choice: list[Any] | None = None
    randint: list[int] | None = None

    @model_validator(mode="after")
    def _one_valid_range(self) -> Distribution:
        given = [d for d in DISTRIBUTIONS if getattr(self, d) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)}, got {given}")
        kind, args = given[0], getattr(self, given[0])
        if kind == "choice":
            if not args:
                raise ValueError("choice needs at least one value")
            if len({repr(a) for a in args}) != len(args):
                raise ValueError(f"choice repeats a value: {args}")
            return self
        if len(args) != 2:
            raise ValueError(f"{kind} takes [low, high], got {len(args)} number(s)")
        low, high = args
        if not low < high:
            raise ValueError(f"empty range [{low}, {high}]: low must be below high")
        if kind == "loguniform" and low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {low}")
        return self

    @property
    def kind(self) -> str:
        """loguniform, uniform, choice or randint."""
        return next(d for d in DISTRIBUTIONS if getattr(self, d) is not None)

    @property
    def args(self) -> list[Any]:
        """The range [low, high] or the choices."""
        return list(getattr(self, self.kind))

    def values_to_check(self) -> list[Any]:
        """The values that bound what can be sampled: the range's ends, or every choice."""
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]  # Ray's randint excludes `high`
        return self.args

    def outer_fraction(self, value: float) -> float | None:
        """Where `value` lies in the range, in [0, 1] (log space for loguniform); None for
        choice."""
        if self.kind == "choice":
            return None
        low, high = (float(a) for a in self.args)
        if self.kind == "loguniform":
            low, high, value = math.log(low), math.log(high), math.log(max(value, 1e-300))
        return (float(value) - low) / (high - low)


class SchedulerSpec(Strict):
    """Early stopping within a cell: Ray Tune's ASHA, synchronous HyperBand, or none."""

    name: Literal["asha", "hyperband", "none"] = "asha"
    grace_rounds: PositiveInt = 1  # rounds (validations) every trial gets before a stop
    reduction_factor: float = Field(3.0, gt=1.0)  # keep ~1/rf of the trials at each rung


class SearchSpec(Strict):
    """A per-cell search; cells are grid points without their seed (docs/tuning.md)."""

    space: dict[str, Distribution] = Field(min_length=1)  # train keys, weights.<task>
    samples: Count = 6  # configurations per cell
    algorithm: Literal["random", "optuna"] = "random"  # optuna (TPE): the optuna extra
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    objective: Literal["relative", "val_loss"] = "relative"  # ranks a cell's trials on val
    seed: Seed = 0  # sampling seed, and the training seed of search trials


Fail = Callable[[str, str], None]


def check_search(
    search: SearchSpec,
    train: TrainSettings,
    unread: dict[str, str],
    weighted: set[str],
    merge: Callable[[dict[str, Any]], Any],
    fail: Fail,
) -> None:
    """Refuse search keys nothing reads or that do not exist, and values their setting
    refuses. `unread`: the grid's unread train keys -> why; `weighted`: tasks of
    multi-task `fixed` cells (whose weights can be searched); `merge(overrides)`
    validates train overrides (raising SpecError at search.space.<key>)."""
    if search.algorithm == "optuna" and importlib.util.find_spec("optuna") is None:
        fail(
            "search.algorithm",
            "optuna is an optional extra that is not installed: pip install "
            "'mtl-sweep[optuna]', or use algorithm: random",
        )
    for key, dist in search.space.items():
        where = f"search.space.{key}"
        if key.startswith(WEIGHT_PREFIX):
            _check_weight(key.removeprefix(WEIGHT_PREFIX), dist, weighted, where, fail)
            continue
        problem = train_key_problem(key, train)
        if problem:
            fail(where, problem)
        if key in unread:
            fail(where, unread[key])
        for value in dist.values_to_check():
            merge(nested(key, value))


def _check_weight(task: str, dist: Distribution, weighted: set[str], where: str, fail: Fail):
    if task not in TASKS:
        fail(where, f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if task not in weighted:
        fail(
            where,
            f"no multi-task cell with fixed weighting trains {task}, so nothing reads its "
            "weight: remove it",
        )
    for value in dist.values_to_check():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            fail(where, f"a loss weight is a number >= 0, got {value!r}")


def train_key_problem(key: str, train: TrainSettings) -> str | None:
    """Why `key` is not a searchable train setting (None when it is)."""
    if key.split(".")[0] in BUDGET_KEYS:
        return "sizes the budget; a search compares trials at equal steps, so set it in train"
    model: Any = train
    for depth, part in enumerate(key.split(".")):
        # Execution settings (device, workers, ...) are no TrainSettings: they train nothing.
        owner = TrainSettings if depth == 0 else type(model)
        fields = owner.model_fields if isinstance(model, BaseModel) else {}
        if part not in fields:
            known = ", ".join(searchable_keys(train))
            return f"not a train setting a trial reads; searchable: {known}, weights.<task>"
        model = getattr(model, part)
    if isinstance(model, BaseModel):
        return f"a group of settings; search one of its keys ({key}.<name>)"
    return None


def searchable_keys(train: TrainSettings, prefix: str = "") -> list[str]:
    """Every leaf train key a search may name."""
    out = []
    for name in (TrainSettings if not prefix else type(train)).model_fields:
        if not prefix and name in BUDGET_KEYS:
            continue
        value = getattr(train, name)
        if isinstance(value, BaseModel):
            out += searchable_keys(value, f"{prefix}{name}.")  # type: ignore[arg-type]
        else:
            out.append(f"{prefix}{name}")
    return out


def nested(key: str, value: Any) -> dict[str, Any]:
    """`optimizer.lr`, 0.01 -> {"optimizer": {"lr": 0.01}}."""
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out
