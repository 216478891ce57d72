"""``live.close_poll`` in a live engine on the local sandbox: the engine polls through a window while it trades
(the klines and their handling go on), rehearses a kline's path there without sending, journaling or keeping
anything, and its task ends with the engine. The engine also opens as many connections as a kline's orders need
at once (a flip is two per symbol, and a keep-warm ping may hold one)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from kinetic_empire.live.gcpace import KLINE_CLOSE_QUIET_MS
from kinetic_empire.live.journal import read_events
from tests.integration.test_live_market_state import config, probe, probe_engine
from tests.support.live import step
from tests.support.waiting import until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("on", [True, False])
def test_the_engine_polls_through_a_window_while_it_trades(tmp_path: Path, on: bool) -> None:
    cfg = dataclasses.replace(config("mark_probe", "klines_only"), close_poll=on)

    async def body() -> None:
        async with probe_engine(tmp_path / "poll", cfg) as (sb, engine):
            poll = engine.close_poll
            lean = engine.rest.lean_client
            assert lean is not None and engine.symbols == ["FILUSDT", "NEARUSDT"]
            await until(lambda: lean.opened == 5, "five connections warmed: both symbols' flips at once, a ping")
            assert poll.window_ms == (KLINE_CLOSE_QUIET_MS if on else None)
            poll.hold(30.0)  # as bench_live.py --close-poll does before a close
            await step(sb, engine, 3)
            assert poll.windows == 1 and poll.turns > 100
            assert probe(engine).state["klines"] == 3  # the klines were handled while it polled
            assert poll.rehearse is not None and poll.rehearsals > 0  # rehearsed, and never dropped
            rehearsals = poll.rehearsals
            await step(sb, engine, 1)
            assert poll.rehearsals > rehearsals
            orders = await engine.rest.signed("GET", "/fapi/v1/allOrders", {"symbol": "FILUSDT"})
            assert not [o for o in orders if "rehearsal" in o["clientOrderId"]]  # nothing of a rehearsal was sent
            task = next(t for t in engine._tasks if t.get_name() == "close poll")
            journal = engine.journal.path
        assert task.done()  # shutdown ended it
        assert not [e for e in read_events(journal) if "rehearsal" in repr(e)]  # nor journaled

    asyncio.run(body())
