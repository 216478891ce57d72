"""The replay: intra-kline paths, timed and maximum speed, pausing, and shifting the data to now."""

from __future__ import annotations

import asyncio
import time

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.sandbox.replay import path_points
from tests.support.sandbox import SYM, WALL0, Client, recv_json, run

pytestmark = pytest.mark.integration

T0 = 1_690_848_000_000


def test_path_points() -> None:
    up = path_points(1.0, 1.5, 0.5, 1.2, 4, 0.1)  # closed up: open, low, high, close
    assert [p for p, _, _ in up] == [1.0, 0.5, 1.5, 1.2]
    down = path_points(1.0, 1.5, 0.5, 0.8, 4, 0.1)  # closed down: open, high, low, close
    assert [p for p, _, _ in down] == [1.0, 1.5, 0.5, 0.8]
    two = path_points(1.0, 1.5, 0.5, 1.2, 2, 0.1)  # the one segment still covers the whole range
    assert two == [(1.0, 1.0, 1.0), (1.2, 1.5, 0.5)]
    assert path_points(1.0, 1.5, 0.5, 1.2, 1, 0.1) == [(1.2, 1.5, 0.5)]
    many = path_points(1.0, 1.5, 0.5, 1.2, 7, 0.1)
    assert many[-1][0] == 1.2 and max(h for _, h, _ in many) == 1.5 and min(lo for _, _, lo in many) == 0.5


def test_timed_replay_runs_at_the_speed_factor() -> None:
    async def body(sb, c: Client) -> None:
        await clock.advance(1.0)
        n = len((await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data)
        assert 60 <= n <= 61, n  # 60 klines per second of server time (61: the next one has begun)
        sb.venue.paused = True
        await clock.advance(0.1)
        frozen = sb.market_ms()
        await clock.advance(0.3)
        assert sb.market_ms() == frozen
        sb.venue.paused = False
        await clock.advance(0.5)
        # resumes where it paused, at 1 h per second once its pause poll (every 0.05 s) sees the change
        assert frozen + 1_620_000 <= sb.market_ms() <= frozen + 1_800_000

    clock = ManualClock(WALL0)
    run(body, clock=clock, speed=3600.0)


def test_max_speed_reaches_the_end_and_keeps_serving() -> None:
    async def body(sb, c: Client) -> None:
        deadline = time.monotonic() + 10
        while not sb.replay.done and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sb.replay.done
        rows = (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "limit": 1000})).data
        assert len(rows) == 120 and rows[-1][0] == T0 + 119 * 60_000
        assert (await c.public("/fapi/v1/ping")).status == 200

    run(body, speed=float("inf"), end=T0 + 120 * 60_000)


def test_one_update_per_kline_and_time_origin_now() -> None:
    async def body(sb, c: Client) -> None:
        start = sb.replay.start_time()
        assert abs(start - time.time() * 1000) < 120_000 and start % 60_000 == 0
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws/filusdt@kline_1m") as ws:
            await sb.step(2)
            msgs = [await recv_json(ws) for _ in range(2)]
            assert [m["k"]["x"] for m in msgs] == [True, True]
            assert msgs[0]["k"]["t"] == start and msgs[1]["k"]["t"] == start + 60_000
        rows = (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data
        assert rows[0][1:6] == ["4.255", "4.256", "4.252", "4.252", "25259.1"]

    run(body, updates_per_kline=1, time_origin="now")


def test_warmup_plays_history_before_serving() -> None:
    async def body(sb, c: Client) -> None:
        rows = (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "limit": 1000})).data
        assert len(rows) == 100 and rows[-1][6] == T0 + 100 * 60_000 - 1

    run(body, warmup_klines=100)


def test_a_breakpoint_pauses_the_replay_at_a_market_time() -> None:
    """``/sandbox-admin/pause?at=T``: the replay stops by itself at the first update at or after T, however
    late the caller looks (the soak driver acts at its events' klines under any load)."""
    async def body(sb, c: Client) -> None:
        start = sb.market_ms()
        at = start + 30 * 60_000 + 7
        r = await c.call("POST", "/sandbox-admin/pause", {"at": at}, signed=False, key=False)
        assert r.status == 200 and r.data == {"paused": False, "pauseAt": at}
        await clock.advance(5.0)  # far past T at 3600x: the replay must have stopped there
        status = (await c.call("GET", "/sandbox-admin/status", signed=False, key=False)).data
        assert status["paused"] and status["pauseAt"] is None
        assert at <= sb.market_ms() < at + 60_000  # the update that reached T, not one more kline
        assert (await c.call("POST", "/sandbox-admin/pause", {"at": "x"}, signed=False, key=False)).status == 400
        await c.call("POST", "/sandbox-admin/resume", signed=False, key=False)
        await clock.advance(0.5)
        assert sb.market_ms() > at + 60_000

    clock = ManualClock(WALL0)
    run(body, clock=clock, speed=3600.0, admin=True)
