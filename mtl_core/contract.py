"""The MLflow run contract (docs/design.md): tag, param and metric names others rely on.

Plain constants and pure helpers, so the report, the runner and the trainables agree
without importing each other (or mlflow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mtl_core.backbones import display_name
from mtl_core.tasks import TASK_METRICS, Metric, tasks_tag

# Tags.
KIND = "mtl_sweep.kind"  # sweep | trial | pretrain
SWEEP = "mtl_sweep.sweep"  # the sweep's name
KEY = "mtl_sweep.trial_key"  # trial or pretraining-job key
TASKS = "mtl_sweep.tasks"  # tasks joined by '+', in the order age, gender, emotion, smile
# The name TASKS was written under from 150e2c3 (2026-11-28) until 2026-12-04, a rename
# that broke the contract; the report still reads it from runs logged then.
TASKS_MISNAMED = "mtl_core.tasks"
BACKBONE = "mtl_sweep.backbone"  # torchvision name, or a reference model (dex, ssrnet)
PRETRAIN = "mtl_sweep.pretrain"  # none, or the stage name
WEIGHTING = "mtl_sweep.weighting"  # fixed, uncertainty, dwa, gradnorm
SEED = "mtl_sweep.seed"
ERROR = "mtl_sweep.error"  # on FAILED runs: the error text
PARENT = "mlflow.parentRunId"
# Extensions beyond the contract's core tags (docs/design.md; readers must not require them).
LABEL = "mtl_sweep.label"  # reference-model label, e.g. DEX
PRETRAIN_KEY = "mtl_sweep.pretrain_key"  # key of the pretraining job a trial started from
SUPERSEDED_BY = "mtl_sweep.superseded_by"  # set on a FINISHED run replaced by --rerun
ATTEMPT = "mtl_sweep.attempt"  # a token per created run: a retried create finds its run
# Tuned sweeps (docs/tuning.md): search runs, and the final trial runs they choose.
CELL = "mtl_sweep.cell"  # a grid point without its seed: shared by its search and final runs
STOPPED_EARLY = "mtl_sweep.stopped_early"  # "true" on a search run its scheduler stopped
TUNED_FROM = "mtl_sweep.tuned_from"  # on a final run: the winning search run's id
SEARCH_VALUES = "mtl_sweep.search_values"  # the sampled values, as sorted JSON
SAMPLE = "mtl_sweep.sample"  # a search run's sample index within its cell

KIND_SWEEP, KIND_TRIAL, KIND_PRETRAIN = "sweep", "trial", "pretrain"
KIND_SEARCH = "search"  # a search trial of a tuned sweep: never in the comparison tables

# Metric name prefixes; per-epoch metrics use step = epoch.
TRAIN, VAL, TEST = "train/", "val/", "test/"
WEIGHT = "weight/"  # per-epoch task weights of the weighting strategy
# TAG lookahead affinity Z(i→j), with train.affinity.every: the epoch's mean per epoch,
# and the mean over every measured step of training once at the end.
AFFINITY, AFFINITY_MEAN = "affinity/", "affinity_mean/"

# The trivial predictor (mean train age, majority train class) on val and test, every trial:
# `trivial/val/age_mae`, `trivial/test/gender_acc`, ...
TRIVIAL = "trivial/"
# Search runs (and final runs of a tuned sweep): the objective per round, higher is better;
# optimizer steps so far (its last value: what the run spent); the best round's objective.
SEARCH_OBJECTIVE = "search/objective"
SEARCH_STEPS = "search/steps"
SEARCH_BEST = "search/best_objective"

# Final metrics, in column order: MLflow key -> (task, metric), e.g. "test/age_mae".
TEST_METRICS: dict[str, tuple[str, Metric]] = {
    TEST + m.name: (t, m) for t, ms in TASK_METRICS.items() for m in ms
}

# Artifacts.
CONFIG_ARTIFACT = "trial.yaml"  # the resolved trial config
CHECKPOINT_ARTIFACT = "checkpoint/best.pt"  # best-on-val weights (state dict)
SPEC_ARTIFACT = "spec.yaml"  # on the sweep run: the resolved spec
REPORT_ARTIFACT = "report.md"  # on the sweep run: the rendered report


def run_name(
    backbone: str,
    tasks: Iterable[str],
    pretrain: str,
    seed: int | None,
    weighting: str = "fixed",
    weights: Mapping[str, float] | None = None,
) -> str:
    """A readable run name, e.g. `resnet18/age+gender/imdb_wiki/s0` (+ weights or strategy)."""
    parts = [backbone, tasks_tag(tasks), pretrain]
    if weighting != "fixed":
        parts.append(weighting)
    elif weights and len(weights) > 1 and any(w != 1.0 for w in weights.values()):
        parts.append("w" + ",".join(f"{w:g}" for w in weights.values()))
    if seed is not None:
        parts.append(f"s{seed}")
    return "/".join(parts)


def row_name(backbone: str, tasks: Iterable[str]) -> str:
    """The report's row name, e.g. `ResNet-18-Age_Gender_Emotion_Smile`."""
    return f"{display_name(backbone)}-" + "_".join(t.capitalize() for t in tasks)


def affinity_metric(prefix: str, source: str, target: str) -> str:
    """`affinity/gender_to_smile`: the effect of a step on `source` onto `target`'s loss."""
    return f"{prefix}{source}_to_{target}"


def parse_affinity_metric(name: str, prefix: str) -> tuple[str, str] | None:
    """(source, target) of an affinity metric name with `prefix`; None for other names."""
    if not name.startswith(prefix):
        return None
    source, sep, target = name[len(prefix) :].partition("_to_")
    return (source, target) if sep and source and target else None


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a resolved config into MLflow params (`train.optimizer.lr`, ...).

    Loss weights become `loss_weight.<task>`; lists are joined by commas. MLflow caps a
    param value at 6000 characters, far above anything here.
    """
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if key == "loss_weights" and not prefix and isinstance(value, Mapping):
            out.update({f"loss_weight.{t}": f"{w:g}" for t, w in value.items()})
        elif isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out
