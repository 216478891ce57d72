"""The default venue: the local sandbox, started in-process on an ephemeral loopback port.

It replays the configured klines (the bundled real ones by default) at an accelerated speed. Enough
history is played before trading starts that every strategy's indicators warm up from the sandbox's
REST klines, exactly as they would from Binance's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from ..binance.signing import Credentials
from ..binance.venues import SANDBOX, Venue
from ..config import StrategyConfig
from ..core.errors import ConfigError
from ..core.timeframes import TIMEFRAME_MS
from ..exchange.config import ExchangeConfig
from ..sandbox import SandboxConfig, SandboxServer
from ..strategy.live_indicators import probe_history_needed
from ..strategy.registry import StrategyRegistry
from .config import LiveConfig


def history_ms(config: LiveConfig, registry: StrategyRegistry) -> int:
    """Market time of history the strategies need before trading: the live warm-up each one asks for
    (``window`` klines, or more when its recursive indicators need more to equal a backtest's)."""
    return max(_warmup_klines(config, registry, s) * TIMEFRAME_MS[s.timeframe or registry.get(s.name).timeframe]
               for s in config.strategies)


def _warmup_klines(config: LiveConfig, registry: StrategyRegistry, s: StrategyConfig) -> int:
    cls = registry.get(s.name)
    try:
        probe = cls(s.symbols[0], s.params, timeframe=s.timeframe or cls.timeframe)
        return max(config.window, probe_history_needed(probe, config.window)[0])
    except Exception:  # bad parameters are reported where the engine builds the strategy
        return config.window


def sandbox_config(config: LiveConfig, registry: StrategyRegistry) -> SandboxConfig:
    sb = config.sandbox
    for path in sb.data:
        if not Path(path).exists():
            raise ConfigError("sandbox.data", f"{path} does not exist", config.source)
    start = None if sb.start is None else sb.start - history_ms(config, registry)
    return SandboxConfig(
        data=[Path(p) for p in sb.data],
        symbols=config.symbols,
        start=start,
        speed=sb.speed,
        updates_per_kline=sb.updates_per_kline,
        exchange=ExchangeConfig(initial_balance=sb.initial_balance, maker_fee=sb.maker_fee, taker_fee=sb.taker_fee,
                                funding_rate=sb.funding_rate),
    )


@contextlib.asynccontextmanager
async def local_sandbox(
    config: LiveConfig, registry: StrategyRegistry, sandbox: SandboxConfig | None = None
) -> AsyncIterator[tuple[SandboxServer, Venue, Credentials]]:
    """Run the sandbox for the block; yields it with its venue (URLs) and its generated keys."""
    cfg = sandbox or sandbox_config(config, registry)
    server = SandboxServer(cfg)
    missing = [s for s in config.symbols if s not in server.market.series]
    if missing:
        raise ConfigError("strategies", f"no klines for {', '.join(missing)} in {', '.join(config.sandbox.data)}",
                          config.source)
    times = server.replay.times
    if len(times) == 0:
        raise ConfigError("sandbox.data", "no klines to replay", config.source)
    span = int(times[-1]) - int(times[0])
    trade_start = config.sandbox.start if config.sandbox.start is not None else int(times[0]) + min(
        history_ms(config, registry), span // 2)  # a long warm-up never leaves less than half the data to trade
    cfg.warmup_klines = int(np.searchsorted(times, trade_start))
    if cfg.warmup_klines >= len(times):
        raise ConfigError("sandbox.start", "is at or after the end of the data", config.source)
    async with server:
        yield server, Venue(SANDBOX, server.rest_url, server.ws_url), Credentials(
            server.api_key, server.api_secret, "sandbox"
        )


__all__ = ["local_sandbox", "sandbox_config"]
