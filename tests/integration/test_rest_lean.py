"""BinanceRest's order endpoints through the lean HTTP client map every outcome exactly as through aiohttp (each
case runs both ways): answers, Binance error bodies, 429 with Retry-After, 5xx and cut or late replies as unknown
outcomes (never retried for a placement), refused connections; and on the sandbox over real sockets the lean
client places and cancels orders on one kept-alive connection, seen by the operator gateway's request metrics."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from kinetic_empire.api import ApiMetrics
from kinetic_empire.binance.errors import (
    BinanceError,
    RateLimitError,
    RejectedError,
    UnavailableError,
    UnknownStatusError,
)
from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.core.clock import LiveClock, ManualClock
from kinetic_empire.sandbox import SandboxServer
from tests.support.http_script import Reply, Scripted, answer
from tests.support.sandbox import SYM, WALL0, config

pytestmark = pytest.mark.integration

CREDS = Credentials("k" * 64, "s" * 64, "test")
ORDER = {"symbol": "FILUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "newClientOrderId": "ke-1"}


async def cut(_h: bytes, w: asyncio.StreamWriter) -> bool:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n{\"orderId\":1")
    await w.drain()
    return False


async def silent(_h: bytes, w: asyncio.StreamWriter) -> bool:
    await asyncio.Event().wait()
    return False


CASES: dict[str, tuple[Reply, type[BinanceError] | None, int, int]] = {
    # name: (reply, exception (None: a value), Binance code, HTTP status)
    "answer": (answer(b'{"orderId":7,"status":"NEW"}', headers="X-MBX-USED-WEIGHT-1M: 11\r\n"), None, 0, 200),
    "rejected": (answer(b'{"code":-2019,"msg":"Margin is insufficient."}', "400 Bad Request"), RejectedError,
                 -2019, 400),
    "rate limited": (answer(b'{"code":-1003,"msg":"Too many requests."}', "429 Too Many Requests",
                            "Retry-After: 7\r\n"), RateLimitError, -1003, 429),
    "banned, no body": (answer(b"", "418 I'm a teapot", "Retry-After: 120\r\n"), RateLimitError, -1003, 418),
    "server error": (answer(b"<html>bad gateway</html>", "502 Bad Gateway"), UnknownStatusError, -1000, 502),
    "binance 5xx": (answer(b'{"code":-1007,"msg":"Timeout waiting for response from backend server."}',
                           "503 Service Unavailable"), UnknownStatusError, -1007, 503),
    "busy": (answer(b'{"code":-1001,"msg":"Internal error; unable to process your request."}',
                    "503 Service Unavailable"), UnavailableError, -1001, 503),
    "cut": (cut, UnknownStatusError, -1000, 0),
    "late": (silent, UnknownStatusError, -1007, 0),
    "200 error object": (answer(b'{"code":-4164,"msg":"Order\'s notional must be no smaller than 5"}'),
                         RejectedError, -4164, 400),
}


async def _place(lean: bool, reply: Reply) -> tuple[Any, BinanceRest, Scripted]:
    async with Scripted(reply) as srv:
        rest = BinanceRest(srv.url(), CREDS, lean_orders=lean, max_retries=0, timeout_s=0.3, clock=LiveClock())
        async with rest:
            try:
                out: Any = await rest.signed("POST", "/fapi/v1/order", ORDER, idempotent=False)
            except BinanceError as exc:
                out = exc
        return out, rest, srv


@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_client_maps_every_outcome_as_aiohttp_does(case: str) -> None:
    reply, error, code, status = CASES[case]

    async def body() -> None:
        results = {lean: await _place(lean, reply) for lean in (True, False)}
        for lean, (out, rest, srv) in results.items():
            assert len(srv.requests) == 1, f"lean={lean}: a placement is sent once, never retried"
            assert rest.stats.requests == 1
            head = srv.requests[0].decode()
            assert head.startswith("POST /fapi/v1/order?symbol=FILUSDT&side=BUY&type=MARKET&quantity=1&"
                                   "newClientOrderId=ke-1&recvWindow=5000&timestamp=")
            assert "&signature=" in head and f"\r\nX-MBX-APIKEY: {'k' * 64}\r\n" in head.replace("x-mbx", "X-MBX")
            if error is None:
                assert out == {"orderId": 7, "status": "NEW"}
                assert rest.pacer.used == 11
                continue
            assert type(out) is error, f"lean={lean}: {out!r}"
            assert (out.code, out.http_status) == (code, status), f"lean={lean}: {out}"
            if isinstance(out, RateLimitError):
                assert out.retry_after == (7 if status == 429 else 120)
            assert "k" * 64 not in str(out) and "s" * 64 not in str(out)
        lean_out, plain_out = results[True][0], results[False][0]
        if error is not None:
            assert (lean_out.code, lean_out.http_status) == (plain_out.code, plain_out.http_status)
        assert results[True][1]._lean is None  # closed with the client
    asyncio.run(body())


def test_nothing_listening_is_unavailable_both_ways() -> None:
    async def body() -> None:
        async with Scripted(answer()) as srv:
            url = srv.url()
        for lean in (True, False):
            async with BinanceRest(url, CREDS, lean_orders=lean, max_retries=0) as rest:
                with pytest.raises(UnavailableError, match="cannot connect") as e:
                    await rest.signed("POST", "/fapi/v1/order", ORDER, idempotent=False)
                assert e.value.code == -1001
    asyncio.run(body())


def test_other_endpoints_stay_on_aiohttp() -> None:
    async def body() -> None:
        async with Scripted(answer(b'{"serverTime": 5}')) as srv, BinanceRest(srv.url(), CREDS) as rest:
            assert rest._warming is not None
            await asyncio.wait([rest._warming])  # two connections opened ahead of the first order
            assert rest._lean is not None and rest._lean.opened == 2 and srv.connections == 2
            await rest.get("/fapi/v1/time")
            await rest.signed("DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "x"})
            await rest.signed("DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "y"})
            assert rest._lean.opened == 2  # the order endpoint on a warmed connection, aiohttp on its own
            assert srv.connections == 3
            assert "aiohttp" in srv.requests[0].decode() and "kinetic-empire" in srv.requests[1].decode()
    asyncio.run(body())


def test_orders_on_the_sandbox_over_one_kept_alive_connection_seen_by_the_metrics() -> None:
    clock = ManualClock(WALL0)
    metrics = ApiMetrics()

    async def body() -> None:
        async with SandboxServer(config(), clock=clock) as sb:
            await sb.step(3)
            rest = BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret), clock=clock,
                               trace_configs=[metrics.trace_config(clock)])
            async with rest:
                assert rest._warming is not None
                await asyncio.wait([rest._warming])
                for i in range(3):
                    cid = f"lean-{i}"
                    placed = await rest.signed("POST", "/fapi/v1/order", {
                        "symbol": SYM, "side": "BUY", "type": "LIMIT", "quantity": "10", "price": "3.000",
                        "timeInForce": "GTC", "newClientOrderId": cid}, idempotent=False)
                    assert placed["clientOrderId"] == cid and placed["status"] == "NEW"
                    assert Decimal(placed["price"]) == Decimal("3.000")
                    got = await rest.signed("GET", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": cid})
                    assert got["status"] == "NEW"
                    gone = await rest.signed("DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": cid})
                    assert gone["status"] == "CANCELED"
                with pytest.raises(RejectedError) as e:
                    await rest.signed("DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "lean-0"})
                assert e.value.code == -2011 and e.value.http_status == 400
                assert rest._lean is not None and rest._lean.opened == 2  # the two warmed ones, kept alive
        assert metrics.rest_errors.labels("400")._value.get() == 1  # the refused cancel, as aiohttp reports it
        counts = {s.labels["endpoint"]: s.value
                  for m in metrics.rest_latency.collect() for s in m.samples if s.name.endswith("_count")}
        assert counts.get("/fapi/v1/order") == 10, counts
    asyncio.run(body())
