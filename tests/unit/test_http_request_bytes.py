"""The lean HTTP client refuses a request it cannot write safely: a request target with CR, LF, space or tab, a
header name or value with CR or LF (header injection), a method it does not speak; anything else is written as is."""

from __future__ import annotations

import pytest

from kinetic_empire.binance.http_client import HttpClient, Unsupported
from kinetic_empire.core.clock import ManualClock


def client() -> HttpClient:
    return HttpClient("http://127.0.0.1:9", clock=ManualClock(start_ms=0))


@pytest.mark.parametrize("bad", ["\r", "\n", " ", "\t"], ids=repr)
@pytest.mark.parametrize("where", [0, 5, -1])
def test_a_target_with_a_character_http_cannot_carry_is_refused(bad: str, where: int) -> None:
    target = "/fapi/v1/order?symbol=FILUSDT"
    target = target[:where] + bad + target[where:] if where >= 0 else target + bad
    with pytest.raises(Unsupported, match="request target"):
        client().request_bytes("POST", target if target.startswith("/") else "/" + target, {}, b"")


@pytest.mark.parametrize("bad", ["\r", "\n"], ids=repr)
@pytest.mark.parametrize("in_name", [True, False])
def test_a_header_with_a_line_break_is_refused(bad: str, in_name: bool) -> None:
    headers = {f"X-MBX{bad}APIKEY": "k"} if in_name else {"X-MBX-APIKEY": f"k{bad}X-Evil: 1"}
    with pytest.raises(Unsupported, match="line break"):
        client().request_bytes("GET", "/fapi/v1/time", headers, b"")


def test_a_clean_request_is_written_as_given() -> None:
    data = client().request_bytes("POST", "/fapi/v1/order?a=1&b=%20", {"X-MBX-APIKEY": "key~._-"}, b"")
    assert data.startswith(b"POST /fapi/v1/order?a=1&b=%20 HTTP/1.1\r\n")
    assert b"X-MBX-APIKEY: key~._-\r\n" in data and data.endswith(b"Content-Length: 0\r\n\r\n")
    with pytest.raises(Unsupported, match="method"):
        client().request_bytes("PATCH", "/", {}, b"")
