"""The journal's fast payload writer gives, for every journaled event type and any field values, exactly the text
the dict-then-json path gave (resume, reports and the comparison read it back; a changed byte is a changed journal)."""

from __future__ import annotations

import json
import random
import typing
from dataclasses import fields
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import KlineClosed, OrderRequest
from kinetic_empire.live.journal import EVENT_TYPES, decode
from kinetic_empire.live.journal_codec import _compact, encode, payload

# the values where two ways of writing JSON part: escapes, non-ASCII, exponents, signed zeros, non-finite floats
EDGE: dict[type, list[Any]] = {
    str: ["", "FILUSDT", 'q"u\\o/te', "é→€", "\x00\x1f\n\t", "\U0001f600", "tag-1_x.y~z"],
    int: [0, -1, 2**63, -(2**70), 1_690_869_600_000],
    float: [0.0, -0.0, 1e-7, 1e300, 1 / 3, 4.1234567, float("nan"), float("inf"), float("-inf"), 5e-324],
    Decimal: [Decimal("1E-7"), Decimal("1E+3"), Decimal("-0"), Decimal("123.4000"), Decimal("0.00001"),
              Decimal("-12345678901234567890.123456789")],
    bool: [True, False],
}


def value_for(hint: Any, rng: random.Random) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if rng.random() < 0.25 else value_for(inner[0], rng)
    if origin is tuple:
        return tuple(value_for(args[0], rng) for _ in range(rng.randrange(0, 3)))
    if origin is dict or hint is dict:
        return {value_for(str, rng): value_for(rng.choice([str, int, float, Decimal]), rng) for _ in range(2)}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return rng.choice(list(hint))
    if hint in EDGE:
        if rng.random() < 0.5:
            return rng.choice(EDGE[hint])
        if hint is str:
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)])) for _ in range(6))
        if hint is float:
            return rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-12, 12)
        if hint is Decimal:
            return Decimal(rng.randrange(-10**9, 10**9)).scaleb(rng.randrange(-12, 6))
        if hint is int:
            return rng.randrange(-10**15, 10**15)
        return rng.random() < 0.5
    return rng.choice([None, 1, "x", 2.5])


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_payload_is_the_text_json_wrote(cls: type) -> None:
    rng = random.Random(cls.__name__)
    hints = typing.get_type_hints(cls)
    for _ in range(60):
        event = cls(**{f.name: value_for(hints[f.name], rng) for f in fields(cls)})
        assert payload(event) == _compact(encode(event))


def test_a_kline_and_an_order_read_back_from_their_payload() -> None:
    kline = KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=60_000, open=4.1, high=float("inf"), low=4.0,
                        close=1 / 3, volume=1e-7, ts_event=1, ts_init=2)
    order = OrderRequest(client_order_id="c-1", intent_id="i", strategy_id='s"é→', symbol="FILUSDT", side=Side.SELL,
                         order_type=OrderType.LIMIT, quantity=Decimal("1E-7"), price=Decimal("1E+3"),
                         adjustments=("qty rounded 1.23→1.2",), ts_event=1, ts_init=1)
    assert payload(kline).startswith('{"symbol":"FILUSDT","timeframe":"1m","open_time":60000,"open":4.1,'
                                     '"high":Infinity,')
    assert '"quantity":"0.0000001","price":"1000"' in payload(order) and '"s\\"\\u00e9\\u2192"' in payload(order)
    for event in (kline, order):
        assert payload(event) == _compact(encode(event))
        assert decode(type(event).__name__, json.loads(payload(event))) == event


class _Note(str):
    """A str subclass: json writes it as a string too, through its own path."""


@pytest.mark.parametrize("notes", [
    (), ("a",), ("qty rounded 1.23→1.2", 'q"u\\o/te', "\x00\x1f\n\t", "\U0001f600", ""), ["x", "y", "z", "w"],
    ("a", 1), ("a", Decimal("1.50")), (Side.BUY, "b"), ("a", None), (_Note("n"), "m"), ("a", ("b", "c")),
], ids=repr)
def test_tuples_and_lists_of_notes_are_the_text_json_wrote(notes: Any) -> None:
    # an order's adjustment notes skip the json encoder when every one is a plain str; anything else goes through it
    order = OrderRequest(client_order_id="c-1", intent_id="i", strategy_id="s", symbol="FILUSDT", side=Side.SELL,
                         order_type=OrderType.MARKET, quantity=Decimal("1"), adjustments=notes, ts_event=1, ts_init=1)
    assert payload(order) == _compact(encode(order))
    assert payload(order) == json.dumps(encode(order), separators=(",", ":"))
