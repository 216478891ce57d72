"""Layering rules from the architecture: each layer imports only what it may.

core imports nothing else of ours; the middle layers import core (and a few named neighbours); only
the composition roots (backtest, live, sandbox, download, cli) know every piece.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kinetic_empire"

ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "resources": {"core", "resources"},
    "data": {"core", "data"},
    "strategy": {"core", "strategy"},
    "indicators": {"strategy"},
    "risk": {"core", "risk"},
    "portfolio": {"core", "portfolio"},
    "exchange": {"core", "exchange"},
    "report": {"core", "report", "portfolio"},  # CSV headers come from the portfolio's record types
    "binance": {"core", "binance", "logs"},
    "ccxt_port": {"core", "ccxt_port"},  # the second execution port: core values only, like binance
    "logs": {"logs"},
    "config": {"core", "config"},
    # the core both composition roots build (bus, portfolio, risk, runners): no port, no feed, no venue
    "assembly": {"core", "config", "portfolio", "risk", "strategy"},
}
ROOTS = {"backtest", "live", "sandbox", "download", "cli", "research", "api", "__init__", "__main__"}


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """Our own top-level layers imported by a module (absolute or relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    depth_in_package = len(path.relative_to(package).parts) - 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                up = node.level - 1
                base = list(path.relative_to(package).parts[:depth_in_package])
                base = base[: len(base) - up] if up else base
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": the names are layers
                    found.update(alias.name for alias in node.names)
                else:
                    found.add(parts[0])
            elif node.module and node.module.startswith("kinetic_empire."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kinetic_empire."):
                    found.add(alias.name.split(".")[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _layer(p) not in ROOTS)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layer_imports(module: Path) -> None:
    layer = _layer(module)
    assert layer in ALLOWED, f"{layer} has no layering rule: add it to ALLOWED or ROOTS"
    wrong = _imports(module) - ALLOWED[layer]
    assert not wrong, f"{module.relative_to(PACKAGE)} ({layer}) imports {sorted(wrong)}"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    (tmp_path / "risk").mkdir()
    probe = tmp_path / "risk" / "probe.py"
    probe.write_text("from ..exchange import simulated\nimport kinetic_empire.backtest.engine\nfrom . import sizing\n")
    assert _imports(probe, tmp_path) == {"exchange", "backtest", "risk"}


COMMANDS_TO_THE_VENUE = {"OrderRequest", "CancelRequest", "CancelAllRequest", "new_market_request"}  # + its factory


def _builds(path: Path, names: set[str]) -> set[str]:
    """Which of ``names`` a module calls (constructs), by name or attribute (``ev.OrderRequest(...)``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in names:
                found.add(name)
    return found


def test_only_the_risk_gate_builds_orders_and_cancels() -> None:
    """Every order, cancel and cancel-all comes out of the risk package (the gate), so each is checked and
    journaled; reconciliation, shutdown and operators ask the risk manager's commands instead."""
    makers = {str(p.relative_to(PACKAGE)): _builds(p, COMMANDS_TO_THE_VENUE) for p in PACKAGE.rglob("*.py")}
    outside = {m: b for m, b in makers.items() if b and not m.startswith("risk/")}
    assert outside == {}
    inside = set().union(*(b for m, b in makers.items() if m.startswith("risk/")))
    assert inside == COMMANDS_TO_THE_VENUE  # the checker sees them where they are built
