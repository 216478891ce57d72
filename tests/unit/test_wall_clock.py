"""Time is injected: only ``core/clock.py`` reads the wall clock or waits on it (architecture, "Time is injected").

ruff's banned-api rule (TID251 in pyproject.toml) catches the named functions; this test also catches what
a name alone cannot tell: ``asyncio.sleep`` with a delay (``asyncio.sleep(0)`` only yields and is fine),
``time.strftime``/``gmtime``/``localtime`` without a time to format (they read the clock), and the event
loop's own clock (``loop.time()``, ``call_later``, ``call_at``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kinetic_empire"
CLOCK_MODULE = PACKAGE / "core" / "clock.py"

READS = {
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.process_time", "time.sleep",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
    "pandas.Timestamp.now", "pandas.Timestamp.utcnow", "pandas.Timestamp.today",
}
NOW_WITHOUT_ARGUMENT = {"time.gmtime": 0, "time.localtime": 0, "time.ctime": 0, "time.asctime": 0,
                        "time.strftime": 1}
"""Functions that format a given time but read the clock when it is left out: name -> arguments before it."""
LOOP_TIMERS = {"call_later", "call_at"}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (``import time as t``, ``from time import sleep``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 0


def _is_loop(node: ast.expr, aliases: dict[str, str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id.endswith("loop")
    if isinstance(node, ast.Attribute):
        return node.attr.endswith("loop")
    if isinstance(node, ast.Call):
        return (_dotted(node.func, aliases) or "") in {"asyncio.get_running_loop", "asyncio.get_event_loop"}
    return False


def wall_clock_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every read of, or wait on, the wall clock in ``source``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found: list[tuple[int, str]] = []
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"imports {node.module}.{a.name}") for a in node.names
                      if f"{node.module}.{a.name}" in READS | {"asyncio.sleep"}]
            continue
        if not isinstance(node, ast.Attribute | ast.Name):
            continue
        name = _dotted(node, aliases)
        call = calls.get(id(node))
        if name in READS:
            found.append((node.lineno, name))
        elif name == "asyncio.sleep" and not (call is not None and call.args and _is_zero(call.args[0])):
            found.append((node.lineno, "asyncio.sleep with a delay (use the clock's sleep)"))
        elif name in NOW_WITHOUT_ARGUMENT and call is not None and len(call.args) <= NOW_WITHOUT_ARGUMENT[name]:
            found.append((node.lineno, f"{name} without a time reads the clock"))
        elif isinstance(node, ast.Attribute) and _is_loop(node.value, aliases) and (
            node.attr in LOOP_TIMERS or (node.attr == "time" and call is not None)
        ):
            found.append((node.lineno, f"the event loop's clock ({node.attr})"))
    return sorted(set(found))


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != CLOCK_MODULE)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_clock_module_reads_wall_time(module: Path) -> None:
    uses = wall_clock_uses(module.read_text(encoding="utf-8"))
    assert not uses, f"{module.relative_to(PACKAGE)}: " + "; ".join(f"line {n}: {w}" for n, w in uses) + (
        " -- take a Clock (kinetic_empire.core.clock) as a parameter instead")


def test_the_clock_module_is_where_wall_time_is_read() -> None:
    assert wall_clock_uses(CLOCK_MODULE.read_text(encoding="utf-8")), "the rule no longer sees the clock's own reads"


def test_the_checker_catches_planted_reads(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import asyncio\n"
        "import time as t\n"
        "from datetime import datetime\n"
        "from time import monotonic\n"
        "import pandas as pd\n"
        "async def f(loop, clock):\n"
        "    a = t.time()\n"
        "    b = datetime.now()\n"
        "    await asyncio.sleep(0.5)\n"
        "    await asyncio.sleep(0)\n"  # a pure yield: allowed
        "    s = t.strftime('%H:%M')\n"
        "    u = t.strftime('%H:%M', t.gmtime(clock.now_ms() / 1000))\n"  # formatting a given time: allowed
        "    c = loop.time()\n"
        "    asyncio.get_running_loop().call_later(1.0, print)\n"
        "    d = pd.Timestamp.now()\n"
        "    sleep = asyncio.sleep\n"
        "    await clock.sleep(3)\n"  # the injected clock: allowed
        "    return monotonic()\n"
    )
    lines = [n for n, _ in wall_clock_uses(planted.read_text())]
    assert lines == [4, 7, 8, 9, 11, 13, 14, 15, 16, 18]
