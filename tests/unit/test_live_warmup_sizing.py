"""The live warm-up (and the local sandbox's history before trading) is sized from the indicators."""

from __future__ import annotations

from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.sandbox_venue import history_ms
from kinetic_empire.strategy import incremental as inc
from kinetic_empire.strategy.registry import build_registry


def config(strategies: list[dict], window: int = 500) -> LiveConfig:
    return LiveConfig.from_mapping({"live": {"window": window}, "strategies": strategies})


def test_sandbox_history_covers_the_longest_warm_up_of_any_strategy():
    registry = build_registry([])
    ema = config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"slow": 200}}])
    assert history_ms(ema, registry) == (inc.Ema(200).settle() + 1) * 60_000
    rsi = config([{"name": "rsi_reversion", "symbols": ["FILUSDT"], "timeframe": "1h"}])
    assert history_ms(rsi, registry) == 501 * 3_600_000  # RSI(14) settles in 388: the window rules
    both = config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m"},
                   {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "1h"}], window=100)
    longest = max((inc.Ema(50).settle() + 1) * 60_000, (inc.Rsi(14).settle() + 1) * 3_600_000)
    assert history_ms(both, registry) == longest
