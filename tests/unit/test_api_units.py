"""The gateway's pure parts: the order-state map, the SSE ring's replay and overflow, token checks."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kinetic_empire.api.app import with_symbols
from kinetic_empire.api.auth import TokenCheck, check_host
from kinetic_empire.api.orders import BINANCE_TO_STATE, OrderTable
from kinetic_empire.api.stream import EventStream
from kinetic_empire.core.enums import OrderStatus, OrderType, Side
from kinetic_empire.core.errors import KineticError
from kinetic_empire.core.events import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, OrderRequest


def test_every_binance_status_has_a_state() -> None:
    assert set(BINANCE_TO_STATE) == {s.value for s in OrderStatus}
    assert BINANCE_TO_STATE["NEW"] == "ACCEPTED" and BINANCE_TO_STATE["CANCELED"] == "CANCELLED"
    assert BINANCE_TO_STATE["EXPIRED_IN_MATCH"] == "EXPIRED"


def _req(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id="i", strategy_id="s", symbol="FILUSDT", side=Side.BUY,
                        order_type=OrderType.LIMIT, quantity=Decimal("10"), price=Decimal("4"), ts_event=1, ts_init=1)


def _fill(cid: str, qty: str, price: str, status: OrderStatus) -> OrderFilled:
    return OrderFilled(client_order_id=cid, order_id=7, trade_id=1, symbol="FILUSDT", side=Side.BUY,
                       order_type=OrderType.LIMIT, quantity=Decimal(qty), price=Decimal(price), commission=Decimal(0),
                       realized_pnl=Decimal(0), is_maker=True, status=status, ts_event=3, ts_init=3)


def test_order_table_follows_the_lifecycle() -> None:
    t = OrderTable(keep_terminal=2)
    assert t.on_event(_req("a")).state == "PENDING"  # type: ignore[union-attr]
    t.on_event(OrderAccepted(client_order_id="a", order_id=7, symbol="FILUSDT", side=Side.BUY,
                             order_type=OrderType.LIMIT, quantity=Decimal(10), price=Decimal(4), trigger_price=None,
                             reduce_only=False, ts_event=2, ts_init=2))
    assert t.get("a").state == "ACCEPTED" and t.get("a").order_id == 7  # type: ignore[union-attr]
    t.on_event(_fill("a", "4", "4", OrderStatus.PARTIALLY_FILLED))
    t.on_event(_fill("a", "6", "3.9", OrderStatus.FILLED))
    row = t.get("a")
    assert row is not None and row.state == "FILLED" and row.filled_qty == 10 and row.avg_price == Decimal("3.94")
    t.on_event(_req("b"))
    t.on_event(OrderCanceled(client_order_id="b", order_id=8, symbol="FILUSDT", ts_event=4, ts_init=4))
    t.on_event(_req("c"))
    t.on_event(OrderRejected(client_order_id="c", symbol="FILUSDT", code=-2019, reason="margin", ts_event=5, ts_init=5))
    assert [r.client_order_id for r in t.open()] == []
    assert t.get("c").state == "REJECTED" and t.get("c").code == -2019  # type: ignore[union-attr]
    assert len(t.rows) <= 3  # finished orders beyond keep_terminal are dropped, oldest first
    assert t.on_event(object()) is None


def _drain(stream: EventStream, last: str | None, n: int) -> list[str]:
    async def run() -> list[str]:
        out = []
        gen = stream.messages(last)
        for _ in range(n):  # a message that never comes is a failure, not a hang
            out.append(await asyncio.wait_for(gen.__anext__(), 5))
        await gen.aclose()
        return out

    return asyncio.run(run())


def test_ring_replays_after_an_id_and_snapshots_when_it_cannot() -> None:
    s = EventStream(lambda: {"x": 1}, lambda: 99, capacity=4)
    for i in range(6):
        s.push("kline", i, {"i": i})
    assert [m.seq for m in s.ring] == [3, 4, 5, 6]
    replay = _drain(s, "4", 2)
    assert replay[0].startswith("id: 5\nevent: kline\n") and replay[1].startswith("id: 6\n")
    assert '"data":{"i":4}' in replay[0]
    for last in (None, "1", "abc", "1000"):  # none, fell out of the ring, garbage, from another process
        first = _drain(s, last, 1)[0]
        assert "event: snapshot" in first and "id: 6\n" in first
    lazy = EventStream(lambda: {}, lambda: 0)
    lazy.push("kline", 1, lambda: {"built": True})
    assert '"built":true' in _drain(lazy, "0", 1)[0]


def test_token_check_and_host_rule() -> None:
    check = TokenCheck("s3cret-token-value")
    assert check.matches("s3cret-token-value") and not check.matches("s3cret") and not check.matches(None)
    check_host("127.0.0.1", token_from_env=False)
    check_host("0.0.0.0", token_from_env=True)
    with pytest.raises(KineticError, match="KINETIC_API_TOKEN"):
        check_host("0.0.0.0", token_from_env=False)


def test_openapi_names_the_runs_symbols() -> None:
    doc = {"components": {"schemas": {"OrderBody": {"properties": {"symbol": {"type": "string"}}},
                                      "ControlBody": {"properties": {"symbol": {"anyOf": [{"type": "string"},
                                                                                          {"type": "null"}]}}}}},
           "paths": {"/api/market": {"get": {"parameters": [{"name": "symbol", "schema": {"type": "string"}}]}}}}
    out = with_symbols(doc, ["FILUSDT"])
    assert out["components"]["schemas"]["OrderBody"]["properties"]["symbol"]["enum"] == ["FILUSDT"]
    assert out["components"]["schemas"]["ControlBody"]["properties"]["symbol"]["anyOf"][0]["enum"] == ["FILUSDT"]
    assert out["paths"]["/api/market"]["get"]["parameters"][0]["schema"]["enum"] == ["FILUSDT"]
    assert "enum" not in doc["components"]["schemas"]["OrderBody"]["properties"]["symbol"]  # a copy


def test_only_venue_failures_count_towards_the_error_rate_alert() -> None:
    """A default paper run raised ``error_rate`` at start-up: its four HTTP 400 answers (-4046 "no need to
    change margin type" for each symbol, ...) counted as venue errors. Only 5xx, 418, 429 and network
    failures count now; every status is still in ``kinetic_rest_errors_total``."""
    import asyncio
    from types import SimpleNamespace

    from kinetic_empire.api.metrics import ApiMetrics
    from kinetic_empire.core.clock import ManualClock

    m = ApiMetrics()
    trace = m.trace_config(ManualClock(0))
    start, end = trace.on_request_start[0], trace.on_request_end[0]

    async def answer(status: int) -> None:
        ctx = SimpleNamespace()
        await start(None, ctx, None)
        await end(None, ctx, SimpleNamespace(url=SimpleNamespace(path="/fapi/v1/marginType"),
                                            response=SimpleNamespace(status=status)))

    async def body() -> None:
        for status in (200, 400, 400, 404):
            await answer(status)
        assert m.rest_error_count == 0
        for status in (429, 418, 503):
            await answer(status)
        assert m.rest_error_count == 3

    asyncio.run(body())
