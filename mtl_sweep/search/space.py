"""A search space as Ray Tune samplers, drawn pairwise, and sampled values applied to trials.

Imports ray only inside `tune_space` and `draw_samples` (the plan and the report run
without it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from mtl_core.settings import TrainSettings
from mtl_core.trial import TrialConfig
from mtl_sweep.spec.search import WEIGHT_PREFIX, SearchSpec, nested

Values = dict[str, Any]  # search key -> sampled value


def tune_space(search: SearchSpec) -> dict[str, Any]:
    """The space as Ray Tune domains (tune.loguniform, ...), in sorted key order."""
    from ray import tune

    makers = {
        "loguniform": lambda a: tune.loguniform(*a),
        "uniform": lambda a: tune.uniform(*a),
        "randint": lambda a: tune.randint(*a),
        "choice": lambda a: tune.choice(a),
    }
    return {k: makers[d.kind](d.args) for k, d in sorted(search.space.items())}


def draw_samples(search: SearchSpec, count: int, start: int = 0) -> list[Values]:
    """Samples `start .. count-1` of the `random` search, drawn with Ray Tune's variant
    generator (what BasicVariantGenerator runs).

    Sample i is drawn from its own generator seeded by (search.seed, i): it depends on
    nothing else, so every cell gets the same i-th sample (a paired design) and raising
    `samples` from 4 to 8 keeps the first 4 (prefix-stable).
    """
    import numpy as np
    from ray.tune.search.variant_generator import generate_variants

    space = tune_space(search)
    out = []
    for i in range(start, count):
        rng = np.random.default_rng([search.seed, i])
        ((_, spec),) = list(generate_variants({"config": dict(space)}, random_state=rng))
        out.append({k: plain(v) for k, v in spec["config"].items()})
    return out


def plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (keys and params hash plain JSON)."""
    return value.item() if hasattr(value, "item") else value


def applied(values: Values, config: TrialConfig) -> Values:
    """The values that change `config`: loss weights apply to multi-task `fixed` trials
    that train the task only (a single-task trial always weighs its task 1)."""
    out = {}
    for key, value in values.items():
        if key.startswith(WEIGHT_PREFIX):
            task = key.removeprefix(WEIGHT_PREFIX)
            if config.weighting != "fixed" or len(config.tasks) < 2 or task not in config.tasks:
                continue
        out[key] = value
    return out


def apply_values(config: TrialConfig, values: Values, **changes: Any) -> TrialConfig:
    """`config` trained with `values` (train keys and weights.<task>), plus `changes`."""
    train = config.train.model_dump()
    weights = dict(config.loss_weights)
    for key, value in applied(values, config).items():
        if key.startswith(WEIGHT_PREFIX):
            weights[key.removeprefix(WEIGHT_PREFIX)] = float(value)
        else:
            train = _merge(train, nested(key, value))
    settings = TrainSettings.model_validate(train)
    return replace(config, train=settings, loss_weights=weights, **changes)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) else value
    return out


def values_text(values: Values) -> str:
    """Values as a short, stable string, e.g. `optimizer.lr=0.0031, weights.age=0.5`."""
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(values.items()))


def values_json(values: Values) -> str:
    """Values as sorted JSON (the `mtl_sweep.search_values` tag)."""
    return json.dumps(values, sort_keys=True)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
