"""A live run decides plain market entries, closes and flips the risk gate's short way (``risk.fast_path``), and each
of those answers is the general decision's at that moment: on the local sandbox over real sockets, with the
portfolio fed by the venue's events, every fast answer is checked against ``IntentDecider.decide`` as it is made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.events import OrderIntent
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.risk.fast_path import FastIntents, request_of
from tests.support.live import DATA, RISK, START, K, step, stepped_engine

pytestmark = pytest.mark.integration

NOW = 7  # the answers compared with the same time stamps


def flipping_config(sizing: dict[str, Any]) -> LiveConfig:
    """ema_cross long and short on both symbols (every cross after the first flips)."""
    return LiveConfig.from_mapping({
        "live": {"window": 120},
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m",
                        "params": {"fast": 3, "slow": 8}}],
        "risk": {**RISK, "strategies": {}, "sizing": sizing},
    })


@pytest.mark.parametrize("sizing", [{"method": "percent_equity", "percent": 20},
                                    {"method": "fixed_notional", "notional": 60}], ids=lambda s: s["method"])
def test_a_live_runs_fast_answers_are_the_general_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            sizing: dict[str, Any]) -> None:
    checked: dict[str, int] = {"entry": 0, "close": 0, "flip": 0}
    differ: list[Any] = []

    def judged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def answer(self: FastIntents, intent: OrderIntent, *args: Any) -> Any:
            out = method(self, intent, *args)
            if out is not None:
                plains = out if name == "flip" else (out,)
                general = self._decider.decide(intent, NOW)
                if general == ([request_of(intent, p, NOW) for p in plains], None):
                    checked[name] += 1
                else:  # (kept, not raised: a live engine reports a failing handler and goes on)
                    differ.append((name, intent, general, plains))
            return out
        return answer

    monkeypatch.setattr(FastIntents, "_entry", judged("entry", FastIntents._entry))
    monkeypatch.setattr(FastIntents, "_close", judged("close", FastIntents._close))
    monkeypatch.setattr(FastIntents, "flip", judged("flip", FastIntents.flip))

    async def body() -> None:
        async with stepped_engine(tmp_path / "fast", config=flipping_config(sizing)) as (sb, engine):
            assert engine.risk._fast is not None  # the live composition root turned it on
            await step(sb, engine, 90)
            assert not differ, differ[0]
            orders = await engine.rest.signed("GET", "/fapi/v1/allOrders", {"symbol": "FILUSDT"})
            assert sum(1 for o in orders if o["reduceOnly"]) >= checked["flip"] // 2 > 0
    asyncio.run(body())
    assert checked["flip"] >= 4, checked
    if sizing["method"] == "fixed_notional":  # (an entry from flat sized from equity takes the general way)
        assert checked["entry"] >= 1, checked
