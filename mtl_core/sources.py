"""Data sources: one schema per dataset format, the tasks each carries, and the loaders.

A source is a *kind* plus its settings. The spec validates sources with these models, the
trial config carries them typed, and the trainables read them, so they live in the core.
Each kind's loader is named lazily (`"module:attr"`), so kinds can be listed without
importing numpy or torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, NonNegativeFloat, model_validator

from mtl_core.registry import Registry
from mtl_core.settings import Count, Seed, Strict
from mtl_core.tasks import TASKS

# --- Data sources ---------------------------------------------------------------------------


class SyntheticSource(Strict):
    """Procedurally rendered faces, written on first use in the real datasets' formats."""

    kind: Literal["synthetic"] = "synthetic"
    train: Count = 512  # images in each dataset's train split
    val: Count = 128  # images in each val split (model selection)
    test: Count = 128  # images in each test split (reported numbers)
    pretrain: Count = 1024  # images in the IMDB-WIKI-format set, before cleaning
    seed: Seed = 0  # same seed and sizes, same bytes on disk
    nuisance: NonNegativeFloat = 1.0  # scale of pose, lighting, noise and clutter; 0 = clean


Root = Annotated[str, Field(min_length=1)]  # "" would silently mean the working folder


class _HeldOut(Strict):
    """A source with no official split: val and test are fractions held out of it."""

    @model_validator(mode="after")
    def _leaves_a_train_split(self) -> _HeldOut:
        held = self.val_fraction + self.test_fraction  # type: ignore[attr-defined]
        if held >= 1:
            raise ValueError(f"val_fraction + test_fraction is {held:g}: nothing is left to train")
        return self


class ChalearnSource(Strict):
    """ChaLearn LAP 2016 apparent age: {train,valid,test}_gt.csv plus image folders."""

    kind: Literal["chalearn"]
    root: Root  # folder holding train_gt.csv, valid_gt.csv, test_gt.csv, train/, valid/, test/


class ImdbWikiSource(_HeldOut):
    """IMDB-WIKI: imdb.mat or wiki.mat plus the face crops. No official split."""

    kind: Literal["imdb_wiki"]
    root: Root  # folder holding imdb_crop/ or wiki_crop/
    db: Literal["imdb", "wiki"] = "imdb"  # which half of IMDB-WIKI
    val_fraction: float = Field(0.05, gt=0.0, lt=1.0)  # held out for model selection
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)  # held out for the reported numbers
    split_seed: Seed = 0  # the held-out split is deterministic from this seed
    min_face_score: float = 1.0  # usual cleaning threshold on face_score
    max_images: Count | None = None  # cap after cleaning (quick studies); None = all


class Fer2013Source(Strict):
    """FER2013: fer2013.csv with emotion,pixels,Usage."""

    kind: Literal["fer2013"]
    root: Root  # folder holding fer2013.csv


class CelebASource(Strict):
    """CelebA: list_attr_celeba.txt, list_eval_partition.txt and the aligned images."""

    kind: Literal["celeba"]
    root: Root  # folder holding the two list files
    images: str = "img_align_celeba"  # image folder, relative to root


class CsvSource(Strict):
    """Any gender/smile data as a plain CSV: image,gender,smile,split."""

    kind: Literal["csv"]
    root: Root  # folder holding the CSV; image paths in it are relative to this folder
    file: str = "labels.csv"  # the CSV's name inside root


class GenkiSource(_HeldOut):
    """GENKI-4K: labels.txt plus files/fileNNNN.jpg. No official split."""

    kind: Literal["genki"]
    root: Root  # folder holding labels.txt and files/
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    split_seed: Seed = 0  # the split is deterministic from this seed


def _default_kind(value: Any) -> Any:
    """A source mapping without `kind` is synthetic (the default source)."""
    if isinstance(value, dict) and "kind" not in value:
        return {**value, "kind": "synthetic"}
    return value


Source = Annotated[
    SyntheticSource
    | ChalearnSource
    | ImdbWikiSource
    | Fer2013Source
    | CelebASource
    | CsvSource
    | GenkiSource,
    Field(discriminator="kind"),
    BeforeValidator(_default_kind),
]

SPLITS: tuple[str, ...] = ("train", "val", "test")  # every source's splits, in this order

# The real format a synthetic source writes for each task (and "pretrain" for stages).
SYNTHETIC_FORMAT: dict[str, str] = {
    "age": "chalearn",
    "gender": "celeba",
    "emotion": "fer2013",
    "smile": "celeba",
    "pretrain": "imdb_wiki",
}


@dataclass(frozen=True)
class SourceKind:
    """What a source kind is: its schema, the tasks it carries labels for, its display name."""

    model: type[Strict]
    tasks: tuple[str, ...]
    display: str  # dataset name in report headings


# Every kind, with its loader (a `mtl_data.loaders.base.Loader` subclass). The
# synthetic kind's target is its generator: it writes the real formats, read by their loaders.
SOURCES: Registry[SourceKind] = Registry("data source kind")
SOURCES.add(
    "synthetic",
    "mtl_data.synthetic.write:ensure_synthetic",
    SourceKind(SyntheticSource, TASKS, "synthetic"),
)
SOURCES.add(
    "chalearn",
    "mtl_data.loaders.chalearn:ChalearnLoader",
    SourceKind(ChalearnSource, ("age",), "ChaLearn 2016"),
)
SOURCES.add(
    "imdb_wiki",
    "mtl_data.loaders.imdb_wiki:ImdbWikiLoader",
    SourceKind(ImdbWikiSource, ("age", "gender"), "IMDB-WIKI"),
)
SOURCES.add(
    "fer2013",
    "mtl_data.loaders.fer2013:Fer2013Loader",
    SourceKind(Fer2013Source, ("emotion",), "FER2013"),
)
SOURCES.add(
    "celeba",
    "mtl_data.loaders.celeba:CelebALoader",
    SourceKind(CelebASource, ("gender", "smile"), "CelebA"),
)
SOURCES.add(
    "csv",
    "mtl_data.loaders.csv_labels:CsvLoader",
    SourceKind(CsvSource, ("gender", "smile"), "CSV"),
)
SOURCES.add(
    "genki",
    "mtl_data.loaders.genki:GenkiLoader",
    SourceKind(GenkiSource, ("smile",), "GENKI-4K"),
)

# Views of the registry, for the spec's checks and the report's headings.
SOURCE_TASKS: dict[str, tuple[str, ...]] = {e.name: e.meta.tasks for e in SOURCES}
DATASET_NAMES: dict[str, str] = {e.name: e.meta.display for e in SOURCES}


def absolute_source(source: Source) -> Source:
    """A source with its root made absolute (trials run in another directory)."""
    root = getattr(source, "root", None)
    if root is None:
        return source
    return source.model_copy(update={"root": os.path.normpath(Path(root).expanduser().absolute())})
