"""Request weights, order counts, 429/418, and injected faults (deterministic under a seed)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.sandbox import FaultConfig, RateLimitConfig
from kinetic_empire.sandbox.faults import Faults
from tests.support.sandbox import SYM, WALL0, Client, recv_json, run, sleepers

pytestmark = pytest.mark.integration


def test_weight_limit_429_then_418_ban() -> None:
    # Rate windows are fixed (the current minute, the current 10 s): a clock that stands at the start of
    # a minute keeps the whole test inside one window, however slow the machine.
    async def body(sb, c: Client) -> None:
        for i in range(10):
            r = await c.public("/fapi/v1/ping")
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(i + 1)
        r = await c.public("/fapi/v1/ping")
        assert (r.status, r.code) == (429, -1003) and "current limit is 10" in r.data["msg"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        for _ in range(2):
            assert (await c.public("/fapi/v1/ping")).status == 429
        r = await c.public("/fapi/v1/ping")
        assert (r.status, r.code) == (418, -1003) and "banned until" in r.data["msg"]
        assert int(r.headers["Retry-After"]) >= 1
        assert (await c.get("/fapi/v2/balance")).status == 418

        await clock.advance(60)  # a new minute, and the 30 s ban is over
        assert (await c.public("/fapi/v1/ping")).status == 200

    clock = ManualClock(WALL0)
    run(body, clock=clock, limits=RateLimitConfig(weight_1m=10, ban_after=3, ban_seconds=30))


def test_order_count_limit() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        for i in range(3):
            r = await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
            assert r.headers["X-MBX-ORDER-COUNT-10S"] == str(i + 1)
        r = await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
        assert (r.status, r.code) == (429, -1015) and "Retry-After" in r.headers
        assert (await c.delete("/fapi/v1/allOpenOrders", {"symbol": SYM})).status == 200  # cancels do not count
        await clock.advance(10)  # the next 10 s window
        r = await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
        assert r.status == 200 and r.headers["X-MBX-ORDER-COUNT-10S"] == "1"

    clock = ManualClock(WALL0)
    run(body, clock=clock, limits=RateLimitConfig(orders_10s=3))


def test_faults_are_deterministic_under_a_seed() -> None:
    cfg = FaultConfig(enabled=True, seed=42, error_executed_rate=0.2, error_rejected_rate=0.2, timeout_rate=0.2,
                      latency_ms=(1, 9))
    a, b = Faults(cfg), Faults(cfg)
    seq_a = [(a.order_fault(), a.latency_s()) for _ in range(50)]
    seq_b = [(b.order_fault(), b.latency_s()) for _ in range(50)]
    assert seq_a == seq_b and len({x for x, _ in seq_a}) == 5
    other = Faults(FaultConfig(enabled=True, seed=43, error_executed_rate=0.2, error_rejected_rate=0.2,
                               timeout_rate=0.2))
    assert [other.order_fault() for _ in range(50)] != [x for x, _ in seq_a]


def test_order_faults_executed_or_not() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        params = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "10", "price": "4.100"}
        sb.faults.cfg.update({"error_executed_rate": 1.0})
        r = await c.order(**params, newClientOrderId="a1")
        assert (r.status, r.code) == (503, -1000)
        sb.faults.cfg.update({"error_executed_rate": 0.0, "error_rejected_rate": 1.0})
        r = await c.order(**params, newClientOrderId="a2")
        assert (r.status, r.code) == (503, -1001)
        sb.faults.cfg.update({"error_rejected_rate": 0.0, "timeout_rate": 1.0, "timeout_seconds": 10.0,
                              "timeout_executed_share": 1.0})
        waiting = clock.sleepers
        pending = asyncio.create_task(c.order(**params, newClientOrderId="a3"))
        await sleepers(clock, waiting + 1)  # the gateway holds the reply for 10 s of server time
        await clock.advance(9.9)
        assert not pending.done()
        await clock.advance(0.2)
        r = await pending
        assert (r.status, r.code) == (408, -1007)
        sb.faults.cfg.update({"timeout_rate": 0.0})
        # reconcile as a client must: which of them exist?
        found = {}
        for cid in ("a1", "a2", "a3"):
            q = await c.get("/fapi/v1/order", {"symbol": SYM, "origClientOrderId": cid})
            found[cid] = q.status == 200
        assert found == {"a1": True, "a2": False, "a3": True}

    clock = ManualClock(WALL0)
    run(body, clock=clock, faults=FaultConfig(enabled=True, seed=1))


def test_latency_skew_and_bursts() -> None:
    async def body(sb, c: Client) -> None:
        waiting = clock.sleepers
        pending = asyncio.create_task(c.public("/fapi/v1/ping"))
        await sleepers(clock, waiting + 1)  # held for 50..60 ms of server time
        await clock.advance(0.049)
        assert not pending.done()
        await clock.advance(0.02)
        assert (await pending).status == 200
        sb.faults.cfg.update({"latency_ms": (0, 0), "clock_skew_ms": 7_000})
        assert (await c.get("/fapi/v2/balance")).code == -1021
        server = (await c.public("/fapi/v1/time")).data["serverTime"]
        c.time_offset = server - c.now_ms()  # what a client does on -1021: resync
        assert (await c.get("/fapi/v2/balance")).status == 200
        sb.faults.cfg.update({"rate_limit_burst_rate": 1.0})
        r = await c.public("/fapi/v1/ping")
        assert (r.status, r.code, r.headers["Retry-After"]) == (429, -1003, "1")

    clock = ManualClock(WALL0)
    run(body, clock=clock, faults=FaultConfig(enabled=True, latency_ms=(50, 60)))


def test_dropped_stream() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws/filusdt@kline_1m") as ws:
            await sb.step_updates(1)
            msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

    run(body, faults=FaultConfig(enabled=True, ws_drop_rate=1.0))


def test_admin_endpoint_controls_replay_faults_and_listen_keys() -> None:
    async def body(sb, c: Client) -> None:
        base = f"{sb.rest_url}/sandbox-admin"
        async with c.session.post(f"{base}/step?klines=2") as r:
            assert (await r.json())["marketTime"] == 1_690_848_000_000 + 2 * 60_000 - 1
        async with c.session.post(f"{base}/advance?to=1690848200000") as r:
            assert (await r.json())["marketTime"] <= 1_690_848_200_000
        async with c.session.post(f"{base}/faults", json={"enabled": True, "clock_skew_ms": 1}) as r:
            assert (await r.json())["clock_skew_ms"] == 1
        async with c.session.post(f"{base}/faults", json={"bogus": 1}) as r:
            assert r.status == 400 and (await r.json())["code"] == -1130
        key = (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as ws:
            async with c.session.post(f"{base}/expire-listen-keys") as r:
                assert (await r.json()) == {"expired": 1}
            assert (await recv_json(ws))["e"] == "listenKeyExpired"
        async with c.session.get(f"{base}/status") as r:
            st = await r.json()
            assert st["symbols"] == ["FILUSDT", "NEARUSDT"] and st["updatesPlayed"] >= 10

    run(body, admin=True)


def test_admin_is_off_by_default() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.get(f"{sb.rest_url}/sandbox-admin/status") as r:
            assert r.status == 404 and (await r.json())["code"] == -5000

    run(body)
