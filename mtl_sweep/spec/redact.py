"""Keeping secrets that a spec takes from the environment out of what is persisted.

`load.py` expands `${VAR}` in spec strings. A substitution is *secret* when the variable's
name looks like a credential (SECRET_NAME) or when it lands in `tracking.uri` (tracking
URIs carry tokens and passwords). For each string with a secret substitution, the loader
records the string with that `${VAR}` put back; `redacted_dump` writes those in place of
the real values, so the `spec.yaml` artifact shows `${MLFLOW_TOKEN}` and never the token.
Passwords written into a URI's user-info (`scheme://user:pw@host`) are masked everywhere
`redact_uri` is used, whatever their origin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
SECRET_PATHS: tuple[tuple[str, ...], ...] = (("tracking", "uri"),)  # always redacted
MASK = "***"
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@/\s]+)@")

_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")  # already redacted
Loc = tuple[object, ...]


def is_secret(var: str, loc: Loc) -> bool:
    """True when `${var}` at key path `loc` must not be persisted."""
    return bool(SECRET_NAME.search(var)) or any(loc[: len(p)] == p for p in SECRET_PATHS)


def redact_uri(uri: str, redactions: Mapping[str, str] | None = None) -> str:
    """`uri` with a known secret substitution put back as `${VAR}` and any user-info
    password masked: "http://u:pw@host" -> "http://u:***@host"."""
    if redactions and uri in redactions:
        uri = redactions[uri]
    return _USERINFO.sub(
        lambda m: m[0] if _PLACEHOLDER.match(m["pw"]) else f"{m['head']}{MASK}@", uri
    )


def _below(redactions: Mapping[Loc, str], key: object) -> dict[Loc, str]:
    return {loc[1:]: text for loc, text in redactions.items() if loc[:1] == (key,)}


def redacted_tree(tree: Any, redactions: Mapping[Loc, str]) -> Any:
    """A copy of a model_dump with each recorded location replaced by its redacted text."""
    if isinstance(tree, dict):
        out: Any = {k: redacted_tree(v, _below(redactions, k)) for k, v in tree.items()}
    elif isinstance(tree, list):
        out = [redacted_tree(v, _below(redactions, i)) for i, v in enumerate(tree)]
    else:
        out = redactions.get((), tree)
    return redact_uri(out) if isinstance(out, str) else out


def redacted_dump(spec: Any) -> str:
    """The resolved spec as YAML with secrets redacted (for the sweep run's spec.yaml)."""
    tree = spec.model_dump(mode="json")
    return yaml.safe_dump(redacted_tree(tree, getattr(spec, "_redactions", {})), sort_keys=False)
