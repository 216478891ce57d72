"""The act-mask replay's delivery plan (issue 17, targets 1 and 8): a kline a mask asks for is delivered without the
kline before it, and every read of the portfolio's latest close (equity marks, risk sizing, intents) still sees what
it sees when every kline is delivered; a sparse replay reads its rows ahead in windows (``SkipPlan._gathered``),
with the same kline values as the arrays hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_act_mask import _config, _same, fingerprint, frames  # type: ignore[import-not-found]

from kinetic_empire.backtest import Backtest, engine, skip
from kinetic_empire.backtest.skip import SkipPlan
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.portfolio import Portfolio
from kinetic_empire.strategy.registry import build_registry

_LAST_PRICE = Portfolio.last_price


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _ema(tf: str, long_only: bool, **window: Any) -> Any:
    """EMA cross sized at a share of equity (an entry while a position is open marks it at the latest close)."""
    return _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": tf, "params": {"long_only": long_only}}],
                   {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 40}}, **window)


def _run_reading(monkeypatch: pytest.MonkeyPatch, registry: Any, config: Any, act_mask: str) -> tuple[Any, ...]:
    """The run's fingerprint, every answer of the portfolio's latest price with the replay's time then, and the
    Backtest."""
    reads: list[tuple[int, float]] = []
    clocks: list[Any] = []

    def last_price(self: Portfolio, symbol: str) -> float:
        answer = _LAST_PRICE(self, symbol)
        reads.append((clocks[0].now_ms(), answer))
        return answer

    def replay_clock() -> ReplayClock:  # (the run's own clock: a real one, recorded)
        clocks.insert(0, ReplayClock())
        return clocks[0]

    with monkeypatch.context() as m:
        m.setattr(Portfolio, "last_price", last_price)
        m.setattr(engine, "ReplayClock", replay_clock)
        bt = Backtest(config, registry, frames=frames(), act_mask=act_mask)
        print_ = fingerprint(bt)
    return print_, reads, bt


@pytest.mark.parametrize(("tf", "long_only", "start"), [("1m", False, "2023-09-01"), ("15m", False, "2023-08-03"),
                                                         ("1m", True, "2023-09-10")])
def test_every_read_of_the_latest_kline_is_the_per_kline_one(monkeypatch, registry, tf, long_only, start):
    config = _ema(tf, long_only, start=start)
    plain, plain_reads, _ = _run_reading(monkeypatch, registry, config, "off")
    masked, masked_reads, bt = _run_reading(monkeypatch, registry, config, "use")
    for key in plain:
        assert _same(plain[key], masked[key]), f"{key} differs with the act mask"
    assert bt.skip_plan is not None and bt.skip_plan.delivered < len(plain["timestamps"]) // 4
    if not long_only:  # reversals: sized on equity with the position open, so the latest close is read
        assert len(plain_reads) > 20, "the latest price was hardly read: the case would not test it"
    assert masked_reads == plain_reads


def test_an_acting_kline_is_delivered_without_the_kline_before_it(registry):
    """Long-only on 1m: flat between trades, so nearly every delivered kline is one a mask asks for or the one after
    it (where the queued market order fills) or one around a funding time; the kline before each acting one is no longer
    among them."""
    config = _ema("1m", True, start="2023-09-01")
    bt = Backtest(config, registry, frames=frames())
    result = bt.run()
    plan, (gate,) = bt.skip_plan, bt.act_gates
    assert plan is not None
    first = len(gate.mask) - len(result.timestamps)
    acting = int(np.count_nonzero(gate.mask[first:]))
    fills = len(result.exchange.trades._rows)
    funded = sum(1 for row in result.exchange.income if row["incomeType"] == "FUNDING_FEE")  # a funding time in a
    # position: the kline before it and its own
    assert acting > 100 and fills > 100 and funded > 3
    # (a kline before each acting one delivered too would add about ``acting`` more: the plant that restores it fails)
    assert plan.delivered <= acting + fills + 2 * funded + len(result.timestamps) // skip._CHUNK + 2


def test_rows_read_ahead_are_the_arrays_values(registry, monkeypatch):
    """Windows of four stops (many refills, one of them after the stretch a stop rests over) give the same run as
    reading every delivered row from the arrays."""
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"long_only": True}}],
                     start="2023-09-01")
    plain = fingerprint(Backtest(config, registry, frames=frames(), act_mask="off"))
    monkeypatch.setattr(skip, "_GATHER", 4)
    seen: list[int] = []
    real = SkipPlan._gathered

    def gathered(plan: SkipPlan, first: int, end: int) -> Any:
        rows, values, after = real(plan, first, end)
        f = plan._stream.frame
        for row, value in zip(rows, values):
            if row < len(f):
                assert value == (f.open_time.item(row), f.open.item(row), f.high.item(row), f.low.item(row),
                                 f.close.item(row), f.volume.item(row))
        seen.append(first)
        return rows, values, after

    monkeypatch.setattr(SkipPlan, "_gathered", gathered)
    masked = fingerprint(Backtest(config, registry, frames=frames()))
    assert len(seen) > 50 and seen == sorted(seen)
    for key in plain:
        assert _same(plain[key], masked[key]), f"{key} differs with rows read ahead in small windows"
