"""Data preparation for `mtl-sweep run`: checks first, synthetic faces in the background.

Everything a user can get wrong is checked before anything starts (a missing root or
file, ImageNet weights that cannot be had): those exit 2 before MLflow or Ray are
touched. Generating synthetic faces cannot fail for the user's reasons and takes the
longest (seconds per thousand faces, on every core), so it runs in a background thread
while the driver imports MLflow and Ray and starts Ray, and on a local Ray while Tune
starts the first actors, whose trials wait for it (see runner.py: _tune); `wait()` joins
it and raises what stopped it. Ray itself stays on the main thread, where it installs its
signal handlers.

A real source's label files are read in another thread, while MLflow starts: a split they
leave empty would fail every trial that reads it, one by one, so `labels_ok()` raises it
before the sweep's run is created.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mtl_core.errors import DataError, UserError
from mtl_core.sources import SPLITS, Source
from mtl_data.loaders import get_loader
from mtl_data.source import resolve_source
from mtl_data.synthetic.write import ensure_synthetic
from mtl_sweep.expand import Plan


class Flag:
    """A flag that a Tune Stopper can hold: Tune pickles its stopper with the experiment's
    state, and a DataPrep, with its threads, does not pickle."""

    def __init__(self) -> None:
        self.up = False

    def __call__(self) -> bool:
        return self.up


class DataPrep:
    """The plan's data sources: checked at once, synthetic ones generated in a thread."""

    def __init__(self, plan: Plan, cache_dir: Path, progress: bool = True) -> None:
        self.plan, self.cache_dir, self.progress = plan, Path(cache_dir), progress
        self.sources = _sources(plan)  # (source settings, role), each once
        self.real: list[Any] = []  # the real sources, resolved by check()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.failed = Flag()  # raised with `error`, for a Tune Stopper
        self.thread: threading.Thread | None = None
        self.labels: threading.Thread | None = None
        self.labels_error: BaseException | None = None

    def check(self) -> None:
        """Check every real source and fetch ImageNet weights that are asked for.

        Raises DataError (exit 2) naming a missing root or file.
        """
        for source, role in self.sources:
            if source.kind != "synthetic":
                resolved = resolve_source(source, role, self.cache_dir, self.progress)
                if resolved not in self.real:
                    self.real.append(resolved)
        _fetch_weights(self.plan)

    def start(self) -> None:
        """Generate the synthetic sources in a background thread."""
        wanted = list(
            {s.model_dump_json(): s for s, _ in self.sources if s.kind == "synthetic"}.values()
        )
        if wanted:
            self.thread = threading.Thread(
                target=self._generate, args=(wanted,), name="synthetic-faces", daemon=True
            )
            self.thread.start()
        if self.real:
            self.labels = threading.Thread(target=self._read_labels, name="labels", daemon=True)
            self.labels.start()

    def _read_labels(self) -> None:
        try:
            for resolved in self.real:
                if self.stop.is_set():
                    return
                _check_labels(resolved)
        except BaseException as exc:  # handed to the main thread by labels_ok()
            self.labels_error = exc

    def labels_ok(self) -> None:
        """Block until the real sources' labels are read; raise DataError for a split
        they leave with no sample."""
        if self.labels is not None:
            self.labels.join()
            self.labels = None
        if self.labels_error is not None:
            raise self.labels_error

    def _generate(self, wanted: list[Source]) -> None:
        try:
            for source in wanted:
                ensure_synthetic(source, self.cache_dir, self.progress, self.stop)
        except OSError as exc:  # a full disk, a file where a folder goes: the user's to fix
            where = self.cache_dir / "synthetic"
            self._failed(DataError(f"could not write the synthetic faces under {where}: {exc}"))
        except BaseException as exc:
            self._failed(exc)

    def _failed(self, error: BaseException) -> None:
        """Hand the error to wait() on the main thread, and raise the stopper's flag."""
        self.error = error
        self.failed.up = True

    def wait(self) -> None:
        """Block until the data is ready, then resolve every source (fast by now)."""
        self.labels_ok()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            raise self.error
        for source, role in self.sources:
            if source.kind == "synthetic":
                resolve_source(source, role, self.cache_dir, self.progress)

    def cancel(self) -> None:
        """Stop a generation still running (the sweep is giving up); leaves nothing half
        written."""
        self.stop.set()
        for thread in (self.thread, self.labels):
            if thread is not None:
                thread.join()
        self.thread = self.labels = None


def _sources(plan: Plan) -> list[tuple[Source, str]]:
    """Every (source, role) the plan reads, each once, in plan order: the trials' own, and
    a matched budget's reference split, which sizes trials that do not train its task."""
    out: dict[tuple[str, str], tuple[Source, str]] = {}
    for config in [t.config for t in plan.trials] + [j.config for j in plan.jobs]:
        pairs = [(source, config.role(task)) for task, source in config.sources.items()]
        if config.budget_reference is not None:
            pairs.append(config.budget_reference)
        for source, role in pairs:
            out.setdefault((role, source.model_dump_json()), (source, role))
    return list(out.values())


def _check_labels(src: Any) -> None:
    """Raise DataError when a split of the real source `src` (a ResolvedSource) has no
    sample once its label files are read."""
    manifests = get_loader(src.kind).read(Path(src.root), src.opts)
    for split in SPLITS:
        if len(manifests[split]) == 0:
            dropped = ", ".join(f"{r} {n}" for r, n in sorted(manifests[split].dropped.items()))
            raise DataError(
                f"no usable {split} sample in {src} ({dropped or 'no rows'}); every trial "
                f"reading it would fail: see mtl-sweep data check --source {src.kind}={src.root}"
            )


def _fetch_weights(plan: Plan) -> None:
    """Fetch the ImageNet weights the plan asks for now, so their absence is exit 2."""
    wanted = {t.config.backbone for t in plan.trials if t.config.train.imagenet_weights}
    wanted |= {j.config.backbone for j in plan.jobs if j.config.train.imagenet_weights}
    if not wanted:
        return
    from trainables.models.backbones import ImageNetWeightsUnavailable, fetch_imagenet_weights

    for name in sorted(wanted):
        try:
            fetch_imagenet_weights("vgg16" if name == "dex" else name)
        except ImageNetWeightsUnavailable as exc:
            raise UserError(str(exc)) from None
