"""Reading a spec: safe YAML, `--set` overrides, `${ENV_VAR}` expansion, then validation.

Config is resolved once, here, at the boundary; everything after works on a `Spec`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from mtl_core.errors import SpecError, format_loc
from mtl_core.settings import error_path
from mtl_core.sources import SOURCE_TASKS
from mtl_core.tasks import TASKS
from mtl_sweep.spec.redact import is_secret
from mtl_sweep.spec.schema import Spec
from mtl_sweep.spec.suggest import unknown_key_message
from mtl_sweep.spec.validate import check_spec
from mtl_sweep.spec.weights import UNION_TAGS
from mtl_sweep.spec.yamlsafe import YamlProblem, load_yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_SPEC_BYTES = 1_000_000  # a spec is a few KB; anything this big is not one


def load_spec(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, no_data: bool = False
) -> Spec:
    """Load, override, expand env vars and validate the spec at `path`.

    `no_data`: an unset ${VAR} in a data source (data.*, stages.*.source) stays as
    written instead of failing, so a plan can be previewed before the datasets exist.
    Raises SpecError, naming the file and key path, for anything wrong.
    """
    path = Path(path)
    return parse_spec(_read_text(path), str(path), overrides, no_data=no_data)


def _read_text(path: Path) -> str:
    """The spec file's text: a regular file of at most MAX_SPEC_BYTES, in UTF-8."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise SpecError(str(path), "", "not a regular file")
        if st.st_size > MAX_SPEC_BYTES:
            raise SpecError(str(path), "", f"{st.st_size:,} bytes; a spec is at most 1 MB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(str(path), "", "no such spec file") from None
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            str(path),
            f"line {line}",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
        ) from None


def parse_spec(
    text: str, file: str, overrides: list[str] | tuple[str, ...] = (), *, no_data: bool = False
) -> Spec:
    """Like `load_spec`, from YAML text; `file` names it in errors."""
    raw = _unshare(_read_yaml(text, file))
    for item in overrides:
        apply_override(raw, item)
    redactions: dict[tuple[object, ...], str] = {}
    raw = _expand_env(raw, _Env(file, no_data), (), redactions)
    try:
        try:
            spec = Spec.model_validate(raw)
        except ValidationError as exc:
            raise _spec_error(file, exc) from None
        check_spec(spec, file)
    except SpecError as exc:
        raise _blame_override(exc, overrides) from None
    spec._redactions = redactions  # see mtl_sweep.spec.redact.redacted_dump
    return spec


def _blame_override(exc: SpecError, overrides: list[str] | tuple[str, ...]) -> SpecError:
    """An error at or below a key that `--set` gave names that override; one elsewhere in
    the same section (`--set train.epochs=1` making train.schedule wrong) names the
    section's overrides as the context, not only the file."""
    path = re.sub(r"\[(\d+)\]", r".\1", exc.path)  # grid.include[0] -> grid.include.0
    keys = [(item, item.partition("=")[0].strip()) for item in overrides]
    for item, key in reversed(keys):  # the last override of a key is the one that counts
        if path == key or path.startswith(f"{key}."):
            return SpecError(f"{exc.file} (--set {item})", exc.path, exc.message)
    section = [item for item, key in keys if key.split(".")[0] == path.split(".")[0]]
    if section:
        given = ", ".join(f"--set {item}" for item in section)
        return SpecError(f"{exc.file} (with {given})", exc.path, exc.message)
    return exc


def _read_yaml(text: str, file: str) -> dict[str, Any]:
    try:
        raw = load_yaml(text)
    except YamlProblem as exc:
        raise SpecError(file, exc.where, exc.message) from None
    except ValueError as exc:  # e.g. an integer literal of over 4,300 digits
        raise SpecError(file, "", f"cannot read a value: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(file, where, f"YAML syntax error: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(file, "", f"a spec is a mapping of keys, got {type(raw).__name__}")
    return raw


def _unshare(value: Any) -> Any:
    """A tree with no shared nodes: YAML aliases (*name) load as one shared object, and an
    override of one alias must not change the others. (copy.deepcopy keeps the sharing.)"""
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `key.path=value` override in place; the value is parsed as YAML."""
    key, sep, value_text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p for p in parts):
        raise SpecError("--set", item, "expected key.path=value, e.g. train.epochs=3")
    try:  # the file's guards too: duplicate keys, alias bombs, recursive aliases
        value = load_yaml(value_text) if value_text.strip() else None
    except YamlProblem as exc:
        raise SpecError("--set", key, exc.message) from None
    except (yaml.YAMLError, ValueError):
        raise SpecError(
            "--set", key, f"cannot parse value {_short(value_text)!r} as YAML"
        ) from None
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise SpecError("--set", here, "is not a mapping, cannot set a key below it")
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError("--set", key, "its parent is not a mapping")


def _short(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters: a 400-digit number needs no echo in full."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class _Env(NamedTuple):
    """How ${VAR}s expand: the file named in errors, and whether unset data VARs stay."""

    file: str
    no_data: bool = False


def _is_data(loc: tuple[object, ...]) -> bool:
    """Whether `loc` is inside a data source: data.<task>.* or stages.<name>.source.*."""
    return loc[:1] == ("data",) or (loc[:1] == ("stages",) and loc[2:3] == ("source",))


def _expand_env(
    value: Any, env: _Env, loc: tuple[object, ...], redactions: dict[tuple[object, ...], str]
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string; an unset VAR is an error.

    Where a secret (redact.is_secret) is substituted, `redactions[loc]` gets the string
    with that ${VAR} left in place of its value.
    """
    if isinstance(value, dict):
        return {k: _expand_env(v, env, (*loc, k), redactions) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, (*loc, i), redactions) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    expanded = _ENV.sub(lambda m: _substitute(m, env, loc), value)
    if any(is_secret(m.group(1), loc) for m in _ENV.finditer(value)):
        keep = _ENV.sub(
            lambda m: m.group(0) if is_secret(m.group(1), loc) else _substitute(m, env, loc),
            value,
        )
        redactions[loc] = keep
    return expanded


def _substitute(match: re.Match[str], env: _Env, loc: tuple[object, ...]) -> str:
    """The value of one ${VAR} or ${VAR:-default}; an unset VAR is an error (left as
    written in a data source when `env.no_data`)."""
    file = env.file
    name, default = match.group(1), match.group(2)
    if default is not None and "${" in default:
        raise SpecError(
            file, format_loc(loc), f"the default of ${{{name}:-...}} cannot hold a ${{VAR}}"
        )
    if os.environ.get(name):
        return os.environ[name]
    if default is not None:  # unset or empty, as in the shell's ${VAR:-default}
        return default
    if name in os.environ:
        return ""
    if not _is_data(loc):
        fix = f"export {name}=... or write ${{{name}:-default}}"
    elif env.no_data:
        return match.group(0)
    else:
        fix = f"export {name}=...; `mtl-sweep plan --no-data` previews the plan without it"
    raise SpecError(file, format_loc(loc), f"environment variable {name} is not set ({fix})")


# Kind tags that pydantic puts into error locations for the tagged source union.
_SOURCE_KINDS = frozenset(SOURCE_TASKS)


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's union-branch markers so the path reads like the YAML."""
    out: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "list"}):
            continue  # a union branch such as 'list[str]' or 'function-after[...]'
        if isinstance(part, str) and part in UNION_TAGS and out[-2:-1] == ["weights"]:
            continue  # a weights item's tag: lattice or vector
        if (
            isinstance(part, str)
            and part in _SOURCE_KINDS
            and out
            and (out[-1] == "source" or (out[-1] in TASKS and len(out) >= 2 and out[-2] == "data"))
        ):
            continue  # the discriminator tag of a source
        out.append(part)
    return tuple(out)


def _spec_error(file: str, exc: ValidationError) -> SpecError:
    errors = exc.errors()
    # Within a union, the branch that got furthest names the most useful path; at equal
    # depth an unknown key comes first: a misspelt key is also why its right one is missing.
    first = max(
        errors, key=lambda e: (len(_clean_loc(error_path(e))), e["type"] == "extra_forbidden")
    )
    loc = _clean_loc(error_path(first))
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = unknown_key_message(Spec, error_path(first))
    elif first["type"] == "union_tag_invalid":
        ctx = first.get("ctx") or {}
        msg = f"unknown source kind {ctx.get('tag')!r}; known: {', '.join(SOURCE_TASKS)}"
    elif first["type"] == "union_tag_not_found":
        msg = f"a source needs a kind; known: {', '.join(SOURCE_TASKS)}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif first["type"] == "value_error":  # our own validators: their message is the error
        msg = str((first.get("ctx") or {}).get("error") or msg.removeprefix("Value error, "))
    else:
        got = first.get("input")
        if not isinstance(got, dict | list):
            msg = f"{msg} (got {_short(repr(got))})"
    locs = {_clean_loc(error_path(e)) for e in errors}
    more = sum(1 for a in locs if not any(a != b and b[: len(a)] == a for b in locs)) - 1
    if more > 0:
        msg += f" (+{more} more problem{'s' if more > 1 else ''})"
    return SpecError(file, format_loc(loc), msg)
