"""``live.close_poll`` in a live engine on the local sandbox: the engine polls through a window while it trades
(the klines and their handling go on), and its task ends with the engine."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from kinetic_empire.live.gcpace import KLINE_CLOSE_QUIET_MS
from tests.integration.test_live_market_state import config, probe, probe_engine
from tests.support.live import step

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("on", [True, False])
def test_the_engine_polls_through_a_window_while_it_trades(tmp_path: Path, on: bool) -> None:
    cfg = dataclasses.replace(config("mark_probe"), close_poll=on)

    async def body() -> None:
        async with probe_engine(tmp_path / "poll", cfg) as (sb, engine):
            poll = engine.close_poll
            assert poll.window_ms == (KLINE_CLOSE_QUIET_MS if on else None)
            poll.hold(30.0)  # as bench_live.py --close-poll does before a close
            await step(sb, engine, 3)
            assert poll.windows == 1 and poll.turns > 100
            assert probe(engine).state["klines"] == 3  # the klines were handled while it polled
            task = next(t for t in engine._tasks if t.get_name() == "close poll")
        assert task.done()  # shutdown ended it

    asyncio.run(body())
