"""Shared set-up for the operator API tests: a stepped sandbox engine with its gateway on a loopback port.

The gateway is served by uvicorn inside the test's event loop, exactly as ``kinetic run`` serves it, and
the tests talk to it over real HTTP (httpx) on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from kinetic_empire.api import ApiMetrics, Gateway
from kinetic_empire.core.clock import LiveClock
from kinetic_empire.live.app import LiveEngine
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events
from kinetic_empire.sandbox import SandboxServer
from tests.support.live import DATA, RISK, START, K, step, stepped_engine

TOKEN = "test-token-0123456789abcdef"


def quiet_config(**live: Any) -> LiveConfig:
    """The usual two strategies on 1h klines: silent over a test's few minutes, so the operator's orders
    are the only ones (1m klines still flow for prices, equity and the stream)."""
    live.setdefault("window", 60)
    return LiveConfig.from_mapping({
        "live": live,
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": [
            {"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h", "params": {"fast": 5, "slow": 13}},
            {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "1h",
             "params": {"period": 7, "oversold": 35, "overbought": 65, "stop_pct": 0.3, "target_pct": 0.4}},
        ],
        "risk": RISK,
    })


@contextlib.asynccontextmanager
async def served(run_dir: Path, *, warm_klines: int = 0, config: LiveConfig | None = None, **gateway_kw: Any
                 ) -> AsyncIterator[tuple[SandboxServer, LiveEngine, Gateway, httpx.AsyncClient]]:
    """(sandbox, engine, gateway, client with the Bearer token) for one stepped run."""
    metrics = ApiMetrics()
    timer = LiveClock()
    trace = [metrics.trace_config(timer)]
    async with stepped_engine(run_dir, config=config or quiet_config(), start=False, timer=timer,
                              rest_trace=trace) as (sb, engine):
        gateway_kw.setdefault("port", 0)
        gateway_kw.setdefault("runs_dir", run_dir.parent)
        gateway = Gateway(engine, token=TOKEN, metrics=metrics, results_dir=run_dir.parent / "results",
                          **gateway_kw)
        engine.readers.append(gateway.attach)
        engine.on_journal_commit = metrics.on_journal_commit
        await engine.start()
        await gateway.start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                         timeout=30) as client:
                if warm_klines:
                    await step(sb, engine, warm_klines)
                yield sb, engine, gateway, client
        finally:
            await gateway.stop()


def journal(run_dir: Path, engine: LiveEngine) -> list[Any]:
    """Every event journaled so far (flushed first)."""
    engine.journal.flush()
    return list(read_events(run_dir / "journal.sqlite"))


def sse_messages(text: str) -> list[dict[str, Any]]:
    """Parse an SSE byte stream into messages: {"id", "event", "data"}."""
    out = []
    for block in text.split("\n\n"):
        msg: dict[str, Any] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            if key == "id":
                msg["id"] = int(value)
            elif key == "event":
                msg["event"] = value
            elif key == "data":
                msg["data"] = json.loads(value)
        if "event" in msg:
            out.append(msg)
    return out
