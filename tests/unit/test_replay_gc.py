"""The replay and the garbage collector: the objects a run makes (orders, records, the books' rows, all alive) leave
it in the oldest generation, untraced, so the first allocation after the run does not trace every one of them
in a young collection (0.05-0.15 s of a 1M-kline run with 20k orders, for no garbage found); the collector is
on again afterwards, nothing stays frozen, and a caller that turned it off (the optimiser) is left alone."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines


def _config(fast: int = 3, slow: int = 5) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 1_000_000, "fees": {"maker": 0.0004, "taker": 0.0004}},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                        "params": {"fast": fast, "slow": slow, "long_only": True}}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 100}},
    })  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _young() -> int:
    return len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))


@pytest.mark.parametrize("act_mask", ["off", "use"])
def test_the_run_s_objects_leave_the_young_generations(registry, collector_on, act_mask):
    frame = synthetic_klines(20_000, 7)
    gc.collect()
    result = Backtest(_config(), registry, frames={"FILUSDT": frame}, act_mask=act_mask).run()
    young = _young()  # (the old way: every order, record and row, traced into generation 1 after the run)
    orders = len(result.portfolio.orders)  # (after: order records are made when first read)
    assert orders > 2_000, "few orders: the run would make too few objects to tell"
    assert young < orders // 4, f"{young} objects young after a run of {orders} orders"
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_caller_that_turned_the_collector_off_keeps_it_off(registry, collector_on):
    frame = synthetic_klines(5_000, 7)
    gc.disable()
    try:
        result = Backtest(_config(), registry, frames={"FILUSDT": frame}).run()
        assert result.portfolio.orders
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_cyclic_garbage_of_a_run_is_collected_by_a_full_collection(registry, collector_on):
    """The run's object graph (bus, handlers, portfolio: cyclic) is freed by the next full collection."""
    import weakref

    frame = synthetic_klines(5_000, 7)
    bt = Backtest(_config(), registry, frames={"FILUSDT": frame})
    result = bt.run()
    portfolio = weakref.ref(result.portfolio)
    del bt, result
    gc.collect()
    assert portfolio() is None
