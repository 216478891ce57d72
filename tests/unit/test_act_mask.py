"""Act masks (issue 17, target 8): every example strategy that declares one gives the same backtest with the mask
used (strategy calls skipped, idle stretches jumped over, flat or in a position: see test_act_mask_held.py) as
without it, on the bundled real klines; a wrong mask is caught by ``verify`` and changes the results; a malformed
one is a one-line error."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.results import metrics_of
from kinetic_empire.data import load_klines, sample_data_dir
from kinetic_empire.strategy.act_mask import ActMaskError, crossed, crossed_above, crossed_below, previous, whole
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.series import crossover, crossunder

SAMPLE = str(sample_data_dir())


def _config(strategies: list[dict[str, Any]], risk: dict[str, Any] | None = None, **backtest: Any) -> BacktestConfig:
    base = {"data": SAMPLE, "start": "2023-08-03", "end": "2023-10-01", "funding_rate": 0.0001}
    return BacktestConfig.from_mapping({"backtest": {**base, **backtest}, "strategies": strategies,
                                        "risk": risk or {"default_leverage": 2,
                                                         "sizing": {"method": "percent_equity", "percent": 20}}})


@pytest.fixture(scope="module")
def registry():
    return build_registry()


_FRAMES: dict[str, Any] = {}


def frames() -> dict[str, Any]:
    """The bundled real 1m klines of both symbols, read once for the module (each run takes them as frames)."""
    if not _FRAMES:
        for sym in ("FILUSDT", "NEARUSDT"):
            _FRAMES[sym] = load_klines([SAMPLE], symbol=sym, timeframe="1m")
    return _FRAMES


def _same(a: Any, b: Any) -> bool:
    """Equality that takes NaN as equal to NaN (metrics of a run with no losing trade hold some)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def fingerprint(bt: Backtest) -> dict[str, Any]:
    """Everything a backtest reports: trades, orders, the exchange's fills and income, equity, metrics; and what
    a progress callback sees mid-run (the optimiser prunes on it): its counts and the equity at each."""
    seen: list[tuple[int, int, float]] = []
    r = bt.run(progress=lambda done, total: seen.append((done, total, float(bt.portfolio.equity()))))
    p = r.portfolio
    return {
        "trades": [dataclasses.astuple(t) for t in p.trades],
        "orders": [dataclasses.astuple(o) for o in p.orders],
        "fills": [r.exchange.trades._dict(row) for row in r.exchange.trades._rows],
        "income": list(r.exchange.income),  # (settles the income rows still due)
        "wallet": (p.wallet_balance(), p.fees_total, p.funding_total, p.liquidation_count),
        "timestamps": r.timestamps.tolist(),
        "equity": r.equity.tolist(),
        "metrics": metrics_of(r),
        "runners": [(x.intents_emitted, x.entries_ignored, x.position_in_history) for x in r.runners],
        "progress": seen,
    }


def both_ways(registry, config: BacktestConfig, *, jumps: bool) -> tuple[dict[str, Any], Backtest]:
    """Run with the mask and without it; assert identical results; the masked run's Backtest."""
    plain = fingerprint(Backtest(config, registry, frames=frames(), act_mask="off"))
    masked_bt = Backtest(config, registry, frames=frames())
    masked = fingerprint(masked_bt)
    for key in plain:
        assert _same(plain[key], masked[key]), f"{key} differs with the act mask"
    assert plain["trades"], "the run made no trade: it would prove nothing"
    plan = masked_bt.skip_plan
    if jumps:
        assert plan is not None and 0 < plan.delivered < len(plain["timestamps"]), "no idle kline was jumped over"
    else:
        assert plan is None
    return plain, masked_bt


# ---------------------------------------------------------------------------------- both ways, real klines

CASES = {
    # long-only on 1m: flat about half the time, so the replay jumps; funding applies while long
    "ema_cross 1m long-only": ([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                                 "params": {"long_only": True}}], None, True, {"start": "2023-09-01"}),
    # long/short: always in a position after the first cross, jumped over between crosses and funding times
    "ema_cross 1h both ways": ([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}], None, True),
    # entries carry stops (working orders); a higher-timeframe EMA in the mask
    "mtf_trend 15m": ([{"name": "mtf_trend", "symbols": ["NEARUSDT"], "timeframe": "15m"}], None, True),
    "donchian_breakout 1h": ([{"name": "donchian_breakout", "symbols": ["FILUSDT"], "timeframe": "1h"}], None, True),
    # two symbols are two streams: no jumping, the strategy calls are still skipped
    "donchian_breakout 2 symbols": ([{"name": "donchian_breakout", "symbols": ["FILUSDT", "NEARUSDT"],
                                      "timeframe": "1h"}], None, False),
    # a risk rule reads every kline (an ATR): another listener, so no jumping
    "ema_cross + ATR sizing": ([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h",
                                 "params": {"long_only": True}}],
                               {"default_leverage": 2, "sizing": {"method": "volatility_target", "percent": 1,
                                                                  "timeframe": "1h"}}, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_masked_and_plain_runs_are_identical_on_real_klines(registry, case):
    strategies, risk, jumps, *window = CASES[case]
    plain, _ = both_ways(registry, _config(strategies, risk, **(window[0] if window else {})), jumps=jumps)
    if case.startswith("mtf"):
        assert any(o[5] == "STOP_MARKET" for o in plain["orders"]), "mtf_trend placed no stop"
    if "1m" in case:
        assert plain["wallet"][2] != 0, "no funding was applied: the case would not test it"


def test_the_masks_pass_the_verify_mode(registry):
    for name, tf in (("ema_cross", "1h"), ("mtf_trend", "15m"), ("donchian_breakout", "1h")):
        config = _config([{"name": name, "symbols": ["FILUSDT"], "timeframe": tf}])
        bt = Backtest(config, registry, frames=frames(), act_mask="verify")
        bt.run()  # raises ActMaskError on a kline the mask ruled out where on_kline acted


# ---------------------------------------------------------------------------------- a wrong mask is caught

def _with_mask(name: str, act_mask: Any) -> Any:
    """A registry holding the shipped strategies and an EmaCross under ``name`` whose mask is ``act_mask``."""
    reg = build_registry([], entry_points_too=False)
    cls = type("Custom", (reg.get("ema_cross"),), {"name": name, "act_mask": act_mask})
    reg.add(cls, "test")
    return reg


def _missing_cross(where: float) -> Any:
    def act_mask(self):
        mask = crossed(self.fast_ema, self.slow_ema)
        crosses = mask.nonzero()[0]
        mask[crosses[int(where * (len(crosses) - 1))]] = False  # one real cross ruled out
        return mask
    return act_mask


@pytest.mark.parametrize("where", [0.75, 1.0])
def test_a_mask_missing_one_cross_changes_the_results_and_verify_names_it(where):
    """The both-ways comparison can fail: a mask that hides one real cross gives other trades; ``verify`` names
    that kline (a cross three quarters into the history, mid-run, and the last one, at the end of the data)."""
    reg = _with_mask("leaky_cross", _missing_cross(where))
    config = _config([{"name": "leaky_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                       "params": {"long_only": True}}], start="2023-09-01")
    plain = fingerprint(Backtest(config, reg, frames=frames(), act_mask="off"))
    masked = fingerprint(Backtest(config, reg, frames=frames()))
    assert not _same(plain["trades"], masked["trades"])
    assert not _same(plain["equity"], masked["equity"])
    found = r"on_kline acted on 1 kline\(s\).*\n  leaky_cross on FILUSDT, kline \d+"
    with pytest.raises(ActMaskError, match=found) as e:
        Backtest(config, reg, frames=frames(), act_mask="verify").run()
    assert len(e.value.findings) == 1


def test_a_malformed_mask_is_a_one_line_error():
    reg = _with_mask("float_mask", lambda self: np.ones(len(whole(self.close))))
    with pytest.raises(ActMaskError, match=r"float_mask on FILUSDT: act_mask\(\) returned float64 values"):
        Backtest(_config([{"name": "float_mask", "symbols": ["FILUSDT"]}]), reg, frames=frames()).run()
    reg = _with_mask("short_mask", lambda self: np.ones(3, dtype=bool))
    with pytest.raises(ActMaskError, match=r"short_mask on FILUSDT: act_mask\(\) returned shape \(3,\); expected"):
        Backtest(_config([{"name": "short_mask", "symbols": ["FILUSDT"]}]), reg, frames=frames()).run()
    reg = _with_mask("broken_mask", lambda self: 1 / 0)
    with pytest.raises(ActMaskError, match=r"broken_mask on FILUSDT: act_mask\(\) raised ZeroDivisionError: division"):
        Backtest(_config([{"name": "broken_mask", "symbols": ["FILUSDT"]}]), reg, frames=frames()).run()
    with pytest.raises(ActMaskError, match="act_mask mode 'sometimes'"):
        Backtest(_config([{"name": "broken_mask", "symbols": ["FILUSDT"]}]), reg, frames=frames(),
                 act_mask="sometimes").run()


# ---------------------------------------------------------------------------------- the helpers


def test_crossed_helpers_equal_the_scalar_rules_at_every_kline(registry):
    """``crossed_above`` / ``crossed_below`` are crossover / crossunder at each kline (scalar, the live rule)."""
    frame = load_klines([SAMPLE], symbol="FILUSDT", timeframe="1m", end=1691020800000)  # 2023-08-03
    strategy = registry.get("ema_cross")("FILUSDT", {"fast": 5, "slow": 12}, timeframe="1m")
    strategy._bind(frame.open, frame.high, frame.low, frame.close, frame.volume, frame.open_time)
    fast, slow = strategy.fast_ema, strategy.slow_ema
    up, down, either = crossed_above(fast, slow), crossed_below(fast, slow), crossed(fast, slow)
    level = crossed_above(fast, 0.2)  # a series against a number
    scalar_up, scalar_down, scalar_level = [], [], []
    for i in range(len(frame)):
        strategy._cursor.i = i  # not a whole-history cursor: crossover takes its scalar path
        scalar_up.append(crossover(fast, slow))
        scalar_down.append(crossunder(fast, slow))
        scalar_level.append(crossover(fast, 0.2))
    assert up.tolist() == scalar_up and down.tolist() == scalar_down and level.tolist() == scalar_level
    assert either.tolist() == (up | down).tolist() and up.sum() > 10
    assert np.array_equal(previous(strategy.close)[1:], whole(strategy.close)[:-1])
    assert np.isnan(previous(strategy.close)[0])


# ---------------------------------------------------------------------------------- live runs ignore it


def test_a_live_runner_calls_on_kline_on_every_kline_whatever_the_mask(registry):
    """Live, the mask is ignored: a wrong mask must not be able to suppress a live trade (act_mask module)."""
    from kinetic_empire.core.bus import EventBus
    from kinetic_empire.core.clock import ManualClock
    from kinetic_empire.core.events import new_kline
    from kinetic_empire.strategy.runner import StrategyRunner

    calls: list[int] = []

    class Counted(registry.get("ema_cross")):
        def act_mask(self):
            return np.zeros(len(whole(self.close)), dtype=bool)  # "never acts": a wrong mask, on purpose

        def on_kline(self, kline):
            calls.append(kline.open_time)
            super().on_kline(kline)

    f = frames()["FILUSDT"]
    rows = [new_kline("FILUSDT", "1m", int(f.open_time[i]), float(f.open[i]), float(f.high[i]), float(f.low[i]),
                      float(f.close[i]), float(f.volume[i]), int(f.open_time[i]) + 59_999, int(f.open_time[i]) + 60_000)
            for i in range(400)]
    runner = StrategyRunner(Counted("FILUSDT", {"fast": 3, "slow": 8}, timeframe="1m"), EventBus(),
                            ManualClock(start_ms=0), strategy_id="t", id_prefix="t", window=100)
    runner.warm_up_live(rows[:100])
    for k in rows[100:]:
        runner.on_kline(k)
    assert calls == [k.open_time for k in rows[100:]]
    assert runner.intents_emitted > 0  # it traded on klines its mask ruled out
