"""`mtl-sweep data`: write synthetic faces in the real formats, and check data sources.

The trainables (numpy, PIL, torch) are imported inside the commands, so that importing
the CLI stays light.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import TypeAdapter, ValidationError

from mtl_core.cachedir import default_cache_dir
from mtl_core.errors import DataError, UserError, format_loc
from mtl_core.files import atomic_path, writable_dir
from mtl_core.settings import MAX_COUNT, MAX_SEED, error_path
from mtl_core.sources import SOURCE_TASKS, Source, SyntheticSource
from mtl_core.tasks import TASKS

_SYNTH = SyntheticSource()  # its defaults are the options' defaults
_SOURCE: TypeAdapter[Any] = TypeAdapter(Source)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Write synthetic faces in the real datasets' formats, and check data sources."""


# The synthetic knobs, as options: (name, click type, help). Defaults come from the schema.
_KNOBS = (
    ("train", click.IntRange(1, MAX_COUNT), "Train images per dataset."),
    ("val", click.IntRange(1, MAX_COUNT), "Val images per dataset."),
    ("test", click.IntRange(1, MAX_COUNT), "Test images per dataset."),
    ("pretrain", click.IntRange(1, MAX_COUNT), "IMDB-WIKI-format images, before cleaning."),
    ("seed", click.IntRange(0, MAX_SEED), "Same seed and sizes, same bytes."),
    ("nuisance", click.FloatRange(min=0), "Pose, lighting, noise and clutter; 0 = clean."),
)


def _knob_options(func):
    for name, kind, text in reversed(_KNOBS):
        func = click.option(
            f"--{name}", type=kind, default=getattr(_SYNTH, name), show_default=True, help=text
        )(func)
    return func


@data.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="New or empty folder to write."
)
@_knob_options
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
def synth(out: str, progress: bool, **knobs: Any) -> None:
    """Render synthetic faces into OUT as ChaLearn, CelebA, FER2013 and IMDB-WIKI data."""
    from mtl_data.synthetic.write import write_synthetic

    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} exists and is not an empty folder; pick a new --out")
    writable_dir(target.absolute().parent, "--out's parent folder")
    try:
        source = SyntheticSource(**knobs)
    except ValidationError as exc:  # the options' ranges are the schema's; this is a backstop
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        raise UserError(f"--{format_loc(error_path(err))}: {msg}") from None
    # Written next to the target and renamed at the end: no half-written OUT on failure.
    with atomic_path(target, directory=True) as tmp:
        written = write_synthetic(tmp, source, progress)
    click.echo(
        f"wrote synthetic faces to {target} (seed {source.seed}, nuisance {source.nuisance}):"
    )
    for fmt, tasks in (
        ("chalearn", "age"),
        ("celeba", "gender, smile"),
        ("fer2013", "emotion"),
        ("imdb_wiki", "age, gender (pretraining)"),
    ):
        n = len(written.records[fmt])
        click.echo(f"  {fmt:<10} {n:>6} images  {tasks:<26} root: {target / fmt}")
    click.echo(f"check them with: mtl-sweep data check --source chalearn={target / 'chalearn'}")


@data.command()
@click.argument("spec", metavar="[SPEC]", required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a spec key (repeatable), e.g. data.age.root=/data/chalearn.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="KIND=ROOT[,KEY=VALUE...]",
    help="A source to check, with its settings, e.g. celeba=/data/celeba or "
    "imdb_wiki=/data/wiki_crop,db=wiki (repeatable).",
)
@click.option(
    "--image-size",
    type=click.IntRange(16, 512),
    default=None,
    help="Decode at this size [default: the spec's train.image_size, else 64].",
)
@click.option(
    "--cache-dir",
    default=None,
    help="Decoded caches [default: data.cache_dir, $MTL_SWEEP_CACHE, ~/.cache/mtl-sweep].",
)
@click.option("--progress/--no-progress", default=True, help="Show progress bars on stderr.")
def check(
    spec: str | None,
    overrides: tuple[str, ...],
    sources: tuple[str, ...],
    image_size: int | None,
    cache_dir: str | None,
    progress: bool,
) -> None:
    """For each source and split: usable samples, drops by reason, label distribution.

    Give a SPEC (its four task sources and its stages' sources), or --source KIND=ROOT,
    or both. Checking decodes every image once into the cache that trials then read, and
    generates a spec's synthetic data on first use. A missing root or file, or a split
    with no usable sample, exits with code 2.
    """
    # Over 60 lines on purpose: a click command that resolves its three inputs (spec,
    # --source, defaults) and prints per source as it goes; the checking itself is
    # mtl_data/check.py. Imports wait for the command so the CLI starts fast.
    from mtl_data.check import check_source, empty_splits
    from mtl_data.source import resolve_source

    if spec is None and not sources:
        raise click.UsageError("give a SPEC, or --source KIND=ROOT (repeatable)")
    if overrides and spec is None:
        raise click.UsageError("--set needs a SPEC")
    wanted: list[tuple[dict[str, Any], str, str]] = []  # (source, role, used by)
    size, cache_value = 64, None
    sizes_of: dict[str, set[int]] = {}  # used by -> the image sizes its trials decode at
    if spec is not None:
        from mtl_sweep.spec.load import load_spec

        loaded = load_spec(spec, overrides)
        size, cache_value = loaded.train.image_size, loaded.data.cache_dir
        sizes_of = _sizes_by_user(loaded, spec)
        for task in TASKS:
            wanted.append((getattr(loaded.data, task).model_dump(mode="json"), task, task))
        for name, stage in loaded.stages.items():
            wanted.append((stage.source.model_dump(mode="json"), "pretrain", f"stage {name}"))
    for item in sources:
        source = parse_source_option(item)
        kind = source["kind"]
        wanted.append((source, SOURCE_TASKS[kind][0], f"--source {kind}"))
    cache = writable_dir(default_cache_dir(cache_dir or cache_value), "the cache folder")
    resolved: dict[Any, list[str]] = {}  # ResolvedSource -> what uses it, in first-seen order
    for source, role, used_by in wanted:
        users = resolved.setdefault(resolve_source(source, role, cache, progress), [])
        if used_by not in users:
            users.append(used_by)
    # Every size a trial will read (include rules and stages may set their own), so the
    # caches the sweep needs are all built here; --image-size picks one.
    checks = [
        (src, users, s)
        for src, users in resolved.items()
        for s in ([image_size] if image_size else _sizes(users, sizes_of, size))
    ]
    click.echo("\n\n".join(check_source(src, u, s, cache, progress) for src, u, s in checks))
    several = {src for src, n in Counter(src for src, _, _ in checks).items() if n > 1}
    empty = [
        f"{src}{f' at {s}px' if src in several else ''} ({', '.join(e)})"
        for src, _, s in checks
        if (e := empty_splits(src, s, cache))
    ]
    if empty:
        raise DataError(f"no usable sample in: {'; '.join(empty)}; see the drops above")


def _sizes_by_user(loaded: Any, spec: str) -> dict[str, set[int]]:
    """For each task and `stage NAME`, the image sizes of the trials or jobs that read it."""
    from mtl_sweep.expand import expand

    plan = expand(loaded, spec)
    out: dict[str, set[int]] = {}
    for trial in plan.trials:
        for task in trial.config.tasks:
            out.setdefault(task, set()).add(trial.config.train.image_size)
    for job in plan.jobs:
        out.setdefault(f"stage {job.config.stage}", set()).add(job.config.train.image_size)
    return out


def _sizes(users: list[str], sizes_of: dict[str, set[int]], default: int) -> list[int]:
    """The sizes to decode a source at: its users' (sorted), else `default`."""
    return sorted(set().union(*(sizes_of.get(u, set()) for u in users))) or [default]


def parse_source_option(item: str) -> dict[str, Any]:
    """`KIND=ROOT[,key=value...]` -> a source mapping, validated by the source's schema.

    Values are read as YAML scalars (`max_images=100` is a number, `db=wiki` a string).
    """

    head, *pairs = item.split(",")
    kind, sep, root = head.partition("=")
    if not sep or not kind or not root:
        raise UserError(f"--source {item!r}: expected KIND=ROOT[,key=value...], e.g. celeba=/data")
    if kind not in SOURCE_TASKS or kind == "synthetic":
        real = ", ".join(k for k in SOURCE_TASKS if k != "synthetic")
        raise UserError(f"--source {item!r}: unknown kind {kind!r}; known: {real}")
    source: dict[str, Any] = {"kind": kind, "root": root}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip() or key.strip() in source:
            raise UserError(f"--source {item!r}: bad setting {pair!r}; expected key=value")
        try:
            source[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise UserError(f"--source {item!r}: cannot read the value of {key!r}") from None
    try:
        _SOURCE.validate_python(source)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = format_loc(error_path(err)[1:]) or "kind"
        msg = err["msg"].removeprefix("Value error, ")  # our validators' own words
        msg = f"unknown setting for {kind}" if err["type"] == "extra_forbidden" else msg
        raise UserError(f"--source {item!r}: {where}: {msg}") from None
    return source
