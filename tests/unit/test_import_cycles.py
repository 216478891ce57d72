"""No import cycles between our modules, counting every import (``TYPE_CHECKING`` ones included).

A cycle hidden behind ``TYPE_CHECKING`` still means two modules know each other: the layering the
architecture promises (data flows one way) is gone even if Python can import them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kinetic_empire"


def _modules(package: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _targets(name: str, path: Path, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> our modules it imports. Reaching a submodule through its own package's
    ``__init__`` is not an edge to that ``__init__``."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(name, path, node):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if not target or target == name:
                    continue
                if modules[target].name == "__init__.py" and name.startswith(target + "."):
                    continue
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]], inits: set[str]) -> list[list[str]]:
    """Strongly connected components with two or more modules that are not package ``__init__``s
    (an ``__init__`` re-exporting its submodules forms loops that are not design cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # iterative Tarjan would be longer; the graph is ~150 nodes deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len([m for m in component if m not in inits]) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _inits(package: Path) -> set[str]:
    return {m for m, p in _modules(package).items() if p.name == "__init__.py"}


def test_the_package_has_no_import_cycles() -> None:
    found = cycles(import_graph(PACKAGE), _inits(PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_catches_a_cycle_hidden_behind_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "live").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "live" / "__init__.py").write_text("from .app import Engine\n")
    (package / "live" / "app.py").write_text("from .reconcile import Reconciler\nclass Engine: ...\n")
    (package / "live" / "reconcile.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .app import Engine\nclass Reconciler: ...\n")
    (package / "live" / "other.py").write_text("from . import app\n")
    found = cycles(import_graph(package), _inits(package))
    assert found == [["pkg.live.app", "pkg.live.reconcile"]]
    (package / "live" / "reconcile.py").write_text("class Reconciler: ...\n")
    assert cycles(import_graph(package), _inits(package)) == []
