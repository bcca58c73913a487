"""Reading YAML that a user wrote: safe tags only, no duplicate keys, bounded size.

PyYAML's `safe_load` lets the last of two equal keys win silently, and builds an alias
bomb (a few hundred bytes of nested `*refs`) into gigabytes once anything walks the
tree. `load_yaml` composes the node graph first, measures what it would expand to
(memoised per node, so measuring a bomb is cheap), and refuses it before constructing.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 100_000  # nodes after expanding aliases; the largest shipped spec has ~300
MAX_CHARS = 10_000_000  # characters of scalars after expanding aliases
_MERGE = "tag:yaml.org,2002:merge"


class YamlProblem(ValueError):
    """A YAML document that is refused; `where` is "line L, column C" or ""."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # `<<: *base` may be overridden by explicit keys: not a duplicate
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: construction reports it
            if first is not key_node:
                raise YamlProblem(
                    _at(key_node.start_mark),
                    f"duplicate key {key!r} (first given on line {first.start_mark.line + 1}, "
                    f"again on line {key_node.start_mark.line + 1})",
                )
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes, scalar characters) that `root` expands to, aliases counted at each use."""
    memo: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> tuple[int, int]:
        ident = id(node)
        if ident in memo:
            return memo[ident]
        if ident in active:
            raise YamlProblem(
                _at(node.start_mark), "a recursive alias (an anchor used inside itself)"
            )
        if isinstance(node, yaml.ScalarNode):
            memo[ident] = (1, len(node.value))
            return memo[ident]
        active.add(ident)
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for pair in node.value for n in pair]
        )
        nodes, chars = 1, 0
        for child in children:
            n, c = size(child)
            nodes, chars = nodes + n, chars + c
            if nodes > MAX_NODES or chars > MAX_CHARS:
                break  # enough to refuse; do not walk the rest of a bomb
        active.discard(ident)
        memo[ident] = (nodes, chars)
        return memo[ident]

    return size(root)


def load_yaml(text: str) -> Any:
    """Parse one YAML document with `StrictLoader`, refusing alias bombs.

    Raises YamlProblem for duplicate keys, recursive aliases, documents over MAX_NODES
    nodes or MAX_CHARS characters once aliases are expanded, and nesting too deep to
    parse; yaml.YAMLError for syntax errors.
    """
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes, chars = expanded_size(node)
        if nodes > MAX_NODES or chars > MAX_CHARS:
            raise YamlProblem(
                "",
                f"expands to more than {MAX_NODES:,} nodes or {MAX_CHARS:,} characters "
                "(an alias bomb?); write the values out or split the file",
            )
        return loader.construct_document(node)
    except RecursionError:
        raise YamlProblem("", "nested too deeply to read") from None
    finally:
        loader.dispose()
