"""Shared fixtures: real symbol rules and brackets, and a kline factory for shapes that matter."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import settings

from kinetic_empire.core.rules import LeverageBrackets, SymbolRules
from kinetic_empire.data import KlineFrame
from kinetic_empire.resources import default_brackets, default_symbol_rules

# Property tests: the same examples on every run by default (CI must not pass or fail by luck); set
# HYPOTHESIS_PROFILE=explore to search new examples locally (anything found belongs in a fixed test).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def rules() -> dict[str, SymbolRules]:
    return default_symbol_rules(full=True)


@pytest.fixture(scope="session")
def brackets() -> dict[str, LeverageBrackets]:
    return default_brackets()


def klines_from_closes(
    closes: Sequence[float],
    *,
    symbol: str = "FILUSDT",
    timeframe: str = "1m",
    start_ms: int = 1_690_848_000_000,  # 2023-08-01 00:00 UTC
    spread: float = 0.0,
) -> KlineFrame:
    """Klines whose open is the previous close and whose high/low sit ``spread`` beyond the body."""
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate([[c[0]], c[:-1]])
    h = np.maximum(o, c) + spread
    lo = np.minimum(o, c) - spread
    step = {"1m": 60_000, "15m": 900_000, "1h": 3_600_000}[timeframe]
    t = start_ms + np.arange(len(c), dtype=np.int64) * step
    return KlineFrame(symbol, timeframe, t, o, h, lo, c, np.full(len(c), 1000.0), source="klines_from_closes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks over loopback sockets or runs commands: mark it so
    ``-m integration`` / ``-m 'not integration'`` select by what a test needs, not by file name."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
