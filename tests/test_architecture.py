"""The package graph: a torch-free core that both halves import, and no import cycle.

Imports are read from the source with `ast` (lazy imports inside functions count too), so
the test sees every arrow, not only those taken at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mtl_core", "mtl_data", "mtl_sweep", "trainables")


def _imports(path: Path) -> set[str]:
    """Absolute module names `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def _module_graph() -> dict[str, set[str]]:
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
    }
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _foreign_arrows(package: str, allowed: tuple[str, ...]) -> set[tuple[str, str]]:
    """Arrows from `package`'s modules to any package other than itself and `allowed`."""
    return {
        (mod, dep)
        for mod, deps in _module_graph().items()
        if mod.split(".")[0] == package
        for dep in deps
        if dep.split(".")[0] not in (package, *allowed)
    }


def test_trainables_import_only_the_core_and_the_data_layer():
    assert not _foreign_arrows("trainables", ("mtl_core", "mtl_data"))


def test_the_data_layer_imports_only_the_core():
    assert not _foreign_arrows("mtl_data", ("mtl_core",))


def test_the_data_layer_loads_no_torch():
    code = (
        "import sys, mtl_data.source, mtl_data.cache, mtl_data.check, mtl_data.synthetic.write\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_core_imports_neither_half():
    arrows = {
        (mod, dep)
        for mod, deps in _module_graph().items()
        if mod.startswith("mtl_core")
        for dep in deps
        if dep.split(".")[0] != "mtl_core"
    }
    assert not arrows


def test_no_package_level_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, deps in _module_graph().items():
        for dep in deps:
            a, b = mod.split(".")[0], dep.split(".")[0]
            if a != b:
                graph[a].add(b)
    # mtl_core <- trainables <- mtl_sweep, and mtl_sweep -> mtl_core: a DAG.
    assert "mtl_sweep" not in graph["trainables"] and "mtl_sweep" not in graph["mtl_core"]
    assert not graph["mtl_core"]


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_level_import_cycle():
    """Arrows taken at import time only (module-level statements), module by module."""
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = ast.Module(
            body=[
                n
                for n in tree.body
                if isinstance(n, ast.Import | ast.ImportFrom)
                and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
            ],
            type_ignores=[],
        )
        deps = set()
        for node in top.body:
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            else:
                deps.add(node.module or "")
                deps.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    assert _find_cycle(graph) is None


def test_no_import_cycle_counting_lazy_and_type_checking_imports():
    """Every arrow: module level, inside functions and under TYPE_CHECKING. An import that
    only works inside a function is a cycle in disguise."""
    assert _find_cycle(_module_graph()) is None


def test_no_module_imports_its_own_package_init():
    """A package's modules import its data model, never its `__init__` (which may import
    them back): `from pkg import sub` names `pkg`, `import pkg.sub` does not."""
    graph = _module_graph()
    packages = {m for m in graph if (REPO / m.replace(".", "/") / "__init__.py").exists()}
    arrows = {
        (mod, dep)
        for mod, deps in graph.items()
        for dep in deps
        if dep in packages and mod.startswith(dep + ".") and mod.rsplit(".", 1)[0] == dep
    }
    assert not arrows


def test_find_cycle_finds_one():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    "module", ["mtl_core.trial", "mtl_core.backbones", "mtl_core.sources", "mtl_core.runs"]
)
def test_the_core_loads_no_torch_ray_or_mlflow(module):
    code = (
        f"import sys, {module}\n"
        "from mtl_core.backbones import known_backbones; known_backbones()\n"
        "bad = [m for m in ('torch', 'ray', 'mlflow', 'numpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
