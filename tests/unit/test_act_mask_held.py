"""Act masks while a position is open (issue 17, target 8): the replay also jumps over in-position stretches where
no order rests and no kline would reach the book's watch levels (liquidation price) or funding time, and the
results stay identical to running every kline: trades, orders, fills, income, equity, metrics and what a
progress callback reads. Where a stop rests, or a liquidation or funding time falls inside a stretch, the jump
stops short of it (each case below runs both ways on the bundled real klines and must come out the same)."""

from __future__ import annotations

from typing import Any

import pytest
from test_act_mask import _config, _same, fingerprint, frames  # type: ignore[import-not-found]

from kinetic_empire.backtest import Backtest, feed, skip
from kinetic_empire.backtest.skip import SkipPlan
from kinetic_empire.exchange.book import INF
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.series import crossover, crossunder


@pytest.fixture(scope="module")
def registry():
    reg = build_registry()
    base = reg.get("ema_cross")

    class StoppedCross(base):  # type: ignore[misc, valid-type]
        """The EMA cross with a tight stop-loss on every entry: a stop rests on the exchange while long."""

        name = "stopped_cross"

        def on_kline(self, kline: Any) -> None:
            if crossover(self.fast_ema, self.slow_ema):
                self.buy(stop_loss=kline.close * 0.997)
            elif crossunder(self.fast_ema, self.slow_ema):
                self.close_position()

    reg.add(StoppedCross, "test")
    return reg


class Levels:
    """Spy on the plan: the book's watch levels and next funding time at every in-position look for a stretch,
    and how far it jumped (the real method runs; this only records)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.looks: list[tuple[float, float, int, int]] = []
        real = SkipPlan._held_target

        def spied(plan: SkipPlan, row: int, last: int) -> tuple[int, int]:
            target, again = real(plan, row, last)
            book = plan._book
            self.looks.append((book.watch_low, book.watch_high, book.next_funding, target - row))
            return target, again

        monkeypatch.setattr(SkipPlan, "_held_target", spied)

    def jumps_with_a_level(self) -> int:
        return sum(1 for low, high, _, moved in self.looks if moved > 0 and (low > -INF or high < INF))


def both_ways(registry: Any, config: Any) -> tuple[dict[str, Any], SkipPlan]:
    plain = fingerprint(Backtest(config, registry, frames=frames(), act_mask="off"))
    bt = Backtest(config, registry, frames=frames())
    masked = fingerprint(bt)
    for key in plain:
        assert _same(plain[key], masked[key]), f"{key} differs with the act mask"
    assert plain["trades"], "the run made no trade: it would prove nothing"
    assert bt.skip_plan is not None
    return plain, bt.skip_plan


def _ema(tf: str, long_only: bool, risk: dict[str, Any] | None = None, **window: Any) -> Any:
    return _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": tf, "params": {"long_only": long_only}}],
                   risk, **window)


def test_long_positions_are_jumped_over_and_funding_inside_them_is_settled_as_per_kline(registry, monkeypatch):
    levels = Levels(monkeypatch)
    plain, plan = both_ways(registry, _ema("1m", True, start="2023-09-01"))
    assert plan.held_skipped > 10_000, "the in-position stretches were not jumped over"
    funded = [row for row in plain["income"] if row["incomeType"] == "FUNDING_FEE"]
    assert len(funded) >= 3, "no funding settled while long: the case would not test it"
    assert levels.looks and all(nf < 2**62 for _, _, nf, _ in levels.looks), "a position with no funding time"


def test_long_and_short_positions_are_jumped_over(registry):
    plain, plan = both_ways(registry, _ema("1h", False))
    assert plan.held_skipped > plan.delivered, "always in a position: most klines should be jumped over"
    sides = {o[4] for o in plain["orders"]}
    assert {"BUY", "SELL"} <= sides


@pytest.mark.parametrize(("symbol", "tf", "long_only", "percent", "start", "side", "margin"), [
    ("FILUSDT", "1m", False, 1500, "2023-09-01", "BUY", "CROSSED"),  # a short's, above it
    ("NEARUSDT", "1h", True, 1900, "2023-08-10", "SELL", "CROSSED"),  # a long's, below it, on a kline no mask lets act
    ("FILUSDT", "1m", False, 800, "2023-08-10", "BUY", "ISOLATED"),  # an isolated one's, and trading goes on
])
def test_a_liquidation_inside_a_stretch_happens_on_the_same_kline(registry, monkeypatch, symbol, tf, long_only,
                                                                  percent, start, side, margin):
    """20x leverage at 8-19x equity: a liquidation price sits a few percent away; jumps stop before the kline
    that reaches it."""
    levels = Levels(monkeypatch)
    risk = {"default_leverage": 20, "margin_type": {symbol: margin},
            "sizing": {"method": "percent_equity", "percent": percent}}
    config = _config([{"name": "ema_cross", "symbols": [symbol], "timeframe": tf, "params": {"long_only": long_only}}],
                     risk, start=start)
    plain, plan = both_ways(registry, config)
    assert plain["wallet"][3] == 1, "no liquidation: the case would not test it"
    assert [o[4] for o in plain["orders"] if "liquidat" in o[9].lower()] == [side]
    assert plan.held_skipped > 0
    assert levels.jumps_with_a_level() > 0, "no jump was made with a liquidation price set"


def test_a_resting_stop_is_never_jumped_over(registry, monkeypatch):
    """Stops rest while long: every in-position kline is delivered, and the stops fill as without the mask."""
    levels = Levels(monkeypatch)
    config = _config([{"name": "stopped_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                       "params": {"long_only": True}}], start="2023-09-01")
    plain, plan = both_ways(registry, config)
    fired = [o for o in plain["orders"] if o[1].endswith("-sl") and o[8] == "FILLED"]  # (filled as MARKET)
    assert len(fired) > 50, "few stops fired: the case would not test them"
    assert plan.held_skipped == 0 and not levels.looks
    for strategy, tf in (("mtf_trend", "15m"), ("donchian_breakout", "1h")):
        config = _config([{"name": strategy, "symbols": ["FILUSDT"], "timeframe": tf}])
        _, plan = both_ways(registry, config)
        assert plan.held_skipped == 0


def test_a_progress_callback_reads_the_same_equity_at_every_count(registry, monkeypatch):
    """With a chunk of 997 klines the callback runs ~45 times, many of them in a position: the kline before each
    count is delivered, so the equity it reads (marked at the latest close) is the per-kline one."""
    monkeypatch.setattr(feed, "_CHUNK", 997)
    monkeypatch.setattr(skip, "_CHUNK", 997)
    plain, plan = both_ways(registry, _ema("1m", False, start="2023-09-01"))
    assert len(plain["progress"]) > 40 and plan.held_skipped > 10_000
    wallets = {round(eq, 6) for _, _, eq in plain["progress"]}
    assert len(wallets) > 30, "equity barely moved between counts: the case would not test the marking"


def test_a_risk_guard_reads_the_per_kline_equity_when_funding_settles(registry, monkeypatch):
    """A drawdown guard reads equity (the position marked at the latest close) on every balance change, funding
    included: the kline before a funding time is delivered, so what it reads is the per-kline value."""
    from kinetic_empire.risk.watch import EquityWatch

    real = EquityWatch.observe
    seen: list[tuple[int, Any]] = []

    def observed(watch: EquityWatch, now: int) -> None:
        if watch.enabled:
            seen.append((now, watch._account.equity()))
        real(watch, now)

    monkeypatch.setattr(EquityWatch, "observe", observed)
    risk = {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 150},
            "guards": {"max_drawdown_pct": 90, "daily_loss_limit_pct": 90}}
    config = _ema("1m", True, risk, start="2023-09-01")
    plain = fingerprint(Backtest(config, registry, frames=frames(), act_mask="off"))
    per_kline, seen[:] = list(seen), []
    bt = Backtest(config, registry, frames=frames())
    masked = fingerprint(bt)
    assert _same(plain, masked)
    funding = {row["time"] for row in plain["income"] if row["incomeType"] == "FUNDING_FEE"}
    assert len(funding) >= 3 and bt.skip_plan is not None and bt.skip_plan.held_skipped > 10_000
    at_funding = [(t, eq) for t, eq in per_kline if t - 59_999 in funding]
    assert at_funding, "the guard read nothing when funding settled: the case would not test it"
    assert seen == per_kline


def test_mark_price_klines_turn_jumping_off_and_change_nothing(registry, tmp_path):
    """With mark-price klines in the store the exchange takes each kline with its mark (another handler on the
    route, and a mark that liquidates and funds): the replay delivers every kline; only strategy calls are skipped."""
    from dataclasses import replace

    import numpy as np

    from kinetic_empire.data import KlineStore
    from kinetic_empire.download.stores import MarkKlineStore

    k = frames()["FILUSDT"].between(None, 1_692_000_000_000)
    KlineStore(tmp_path).write(k)
    shift = 0.002
    MarkKlineStore(tmp_path).write(replace(k, open=k.open - shift, high=k.high - shift, low=k.low - shift,
                                           close=k.close - shift, volume=np.zeros(len(k))))
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"long_only": True}}],
                     data=str(tmp_path), start="2023-08-05", end=1_692_000_000_000)
    plain = fingerprint(Backtest(config, registry, act_mask="off"))
    bt = Backtest(config, registry)
    masked = fingerprint(bt)
    assert _same(plain, masked)
    assert plain["trades"] and bt.skip_plan is None
    assert sum(g.calls_skipped for g in bt.act_gates) > 1000
