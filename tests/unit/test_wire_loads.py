"""``wire.loads`` (the market stream's message reader) gives exactly what ``json.loads`` gives: the same value, or the
same error with the same message (the feed logs it), for every shape a stream message can take."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from kinetic_empire.binance.wire import loads

KLINE = ('{"stream":"filusdt@kline_1m","data":{"e":"kline","E":1690869660001,"s":"FILUSDT","k":{"t":1690869600000,'
         '"T":1690869659999,"s":"FILUSDT","i":"1m","o":"4.1230","c":"4.1250","h":"4.1300","l":"4.1200",'
         '"v":"12345.6","x":true,"q":"é→\\u20ac"}}}')
CASES = [
    KLINE, KLINE.encode(), " " + KLINE, KLINE + " ", KLINE + "\n", "\t" + KLINE + "\r\n", KLINE + KLINE,
    KLINE[:-1], "", " ", "{", '{"a":}', '{"a":1,}', "nul", "[1,2]", '"text"', "1e400", "-0", '{"a":NaN}',
    '{"a":Infinity,"b":-Infinity}', '{"a":1}x', "[1] [2]", '{"a":"\\ud83d\\ude00"}', b'\xef\xbb\xbf{"a":1}',
    '\ufeff{"a":1}', '{"a":"unterminated', '{"a":1}\x00',
]


def outcome(fn: Any, raw: str | bytes) -> tuple[str, str]:
    try:
        value = fn(raw)
    except Exception as exc:  # the same type and message: the feed logs it
        return type(exc).__name__, str(exc)
    return "value", json.dumps(value, allow_nan=True, sort_keys=True)


@pytest.mark.parametrize("raw", CASES, ids=repr)
def test_loads_is_json_loads(raw: str | bytes) -> None:
    assert outcome(loads, raw) == outcome(json.loads, raw)


def test_a_kline_message_reads_back_whole() -> None:
    message = loads(KLINE)
    assert message["data"]["k"]["x"] is True and message["data"]["k"]["q"] == "é→€"
    assert math.isinf(loads('{"a":Infinity}')["a"])
