"""Shared set-up for the live tests (no tests here): a stepped sandbox and a live engine on it.

Everything talks over real loopback sockets: the sandbox is the local Binance USD-M exchange, the engine
is the production composition root. Stepped replay makes a run deterministic: each kline is played in
three steps (opening update, range, close) and the engine settles (no request in flight, no message for
a few ms) after each.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.live.app import LiveEngine
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.sandbox_venue import local_sandbox, sandbox_config
from kinetic_empire.logs import JsonFormatter
from kinetic_empire.sandbox import FaultConfig, RateLimitConfig, SandboxServer
from kinetic_empire.strategy.registry import build_registry

DATA = Path(__file__).parents[1] / "data" / "sandbox"  # real FILUSDT and NEARUSDT 1m klines, 2023-08-01 and 02
START = "2023-08-01T05:00:00"
START_MS = 1_690_866_000_000
K = 4  # sandbox updates per kline

STRATEGIES: list[dict[str, Any]] = [
    {"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"fast": 5, "slow": 13}},
    {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "1m",
     "params": {"period": 7, "oversold": 35, "overbought": 65, "stop_pct": 0.3, "target_pct": 0.4}},
]
RISK: dict[str, Any] = {
    "default_leverage": 2,
    "sizing": {"method": "percent_equity", "percent": 20},
    "strategies": {"rsi_reversion": {"sizing": {"method": "risk_per_trade", "percent": 0.5}}},
    "guards": {"max_open_positions": 5},
}


def live_config(**live: Any) -> LiveConfig:
    live.setdefault("window", 120)
    return LiveConfig.from_mapping({
        "live": live,
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": STRATEGIES,
        "risk": RISK,
    })


def backtest_of(klines: int, strategies: list[dict[str, Any]] | None = None) -> Any:
    """A backtest of the same strategies on the same klines, filling and triggering on 1m klines."""
    end = START_MS + klines * 60_000
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(DATA), "start": START, "end": end, "execution_timeframe": "1m", "gap_policy": "keep"},
        "strategies": strategies or STRATEGIES,
        "risk": RISK,
    })
    return Backtest(cfg, build_registry([])).run()


def trade_key(t: Any) -> tuple[Any, ...]:
    """Everything about a trade; times to the kline: the sandbox stamps an intrabar stop's fill with the
    time of the price update that triggered it, the backtest with the kline's open (same price)."""
    return (t.symbol, t.side, t.quantity, t.entry_time // 60_000, t.entry_price, t.exit_time // 60_000, t.exit_price,
            t.exit_reason, t.fees, t.net_pnl)


@contextlib.contextmanager
def log_file(path: Path) -> Any:
    """JSON logs of everything at DEBUG into ``path`` (what ``kinetic run`` writes to kinetic.log)."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


@contextlib.asynccontextmanager
async def stepped_engine(
    run_dir: Path,
    *,
    config: LiveConfig | None = None,
    faults: FaultConfig | None = None,
    start: bool = True,
    exchange_info: dict[str, Any] | None = None,
    market_fills: str = "arrival",
    **engine_kw: Any,
) -> AsyncIterator[tuple[SandboxServer, LiveEngine]]:
    cfg = config or live_config()
    registry = build_registry([])
    sb_cfg = sandbox_config(cfg, registry)
    sb_cfg.limits = RateLimitConfig(enforce=False)
    sb_cfg.exchange_info = exchange_info
    sb_cfg.market_fills = market_fills  # "next_update": the opt-in mode of a backtest-parity run
    if faults is not None:
        sb_cfg.faults = faults
    engine_kw.setdefault("check_streams", False)
    engine_kw.setdefault("unknown_grace_s", 0.05)
    async with local_sandbox(cfg, registry, sb_cfg) as (sb, venue, creds):
        engine = LiveEngine(cfg, registry, venue, creds, run_id=run_dir.name, run_dir=run_dir, **engine_kw)
        if start:
            await engine.start()
        try:
            yield sb, engine
        finally:
            await engine.shutdown()


async def step(sb: SandboxServer, engine: LiveEngine, klines: int, quiet_s: float = 0.01) -> None:
    """Play ``klines`` klines in three parts, letting the engine settle after each: the opening update
    (queued market orders fill), the range (stops and take-profits trigger), the close. Two sockets carry
    the fills and the klines; settling keeps a fill ahead of the close it happened before, as on Binance."""
    for _ in range(klines):
        for phases in (1, K - 1, 1):
            await sb.step_updates(phases)
            await engine.settle(quiet_s)


def sandbox_position(sb: SandboxServer, symbol: str) -> Any:
    return sb.account().exchange.position(symbol)[0]
