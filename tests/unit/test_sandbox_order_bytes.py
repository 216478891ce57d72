"""The order object printed straight into text (``wire.order_bytes``) is the encoder's output, byte for byte.

The single-order endpoints answer with :func:`order_bytes`; everything else (lists, batches, the fault paths) with
``dumps(order_json(...))``. For orders in every state the sandbox gives them (resting, filled, partly kept, canceled,
expired, market, reduce-only, GTD, algo and triggered), and for client ids that need JSON escaping (where it must
fall back to the encoder), the two must give the same bytes, and both the standard library's text.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from kinetic_empire.core.enums import OrderType, Side, TimeInForce
from kinetic_empire.sandbox import SandboxVenue
from kinetic_empire.sandbox.wire import ORDER_KEYS, dumps, order_bytes, order_json
from tests.support.sandbox import SYM, config

ODD_IDS = ['q"uote', "back\\slash", "caf\u00e9", "tab\there", "nl\nx", "del\x7f", "", "sp ace", "x" * 36,
           ".:/_-AZaz09", "\u2028", "emoji\U0001f600"]


def venue() -> SandboxVenue:
    v = SandboxVenue(config(symbols=[SYM, "NEARUSDT"]))
    v.play_klines(30)
    return v


def same(acct: object, sim: object) -> bytes:
    got = order_bytes(acct, sim)  # type: ignore[arg-type]
    want = dumps(order_json(acct, sim))  # type: ignore[arg-type]
    assert got == want, f"{got!r}\n!= {want!r}"
    assert got == json.dumps(order_json(acct, sim), separators=(",", ":"), ensure_ascii=False).encode()  # type: ignore[arg-type]
    assert list(json.loads(got)) == list(ORDER_KEYS)
    return got


def test_orders_in_every_state_print_as_the_encoder_prints_them() -> None:
    v = venue()
    acct = v.account()
    ex = acct.exchange
    last = Decimal(str(v.market.get(SYM).last))  # type: ignore[union-attr]
    seen = []
    resting = ex.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal(10),
                        price=Decimal("4.000"), time_in_force=TimeInForce.GTC, client_order_id="rest")
    seen.append(same(acct, resting))
    gtd = ex.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal("10.5"),
                    price=Decimal("4.001"), time_in_force=TimeInForce.GTD, client_order_id="gtd",
                    good_till_date=v.market_ms() + 3_600_000)
    seen.append(same(acct, gtd))
    market = ex.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(7),
                       client_order_id="mkt")
    seen.append(same(acct, market))  # unfilled ack
    ex.fill_market_on_arrival(market, v.book.walk(v.market.get(SYM), True))  # type: ignore[arg-type]
    seen.append(same(acct, market))  # filled: avgPrice, executedQty, cumQuote
    reduce = ex.submit(symbol=SYM, side=Side.SELL, order_type=OrderType.LIMIT, quantity=Decimal(3),
                       price=(last * Decimal("1.02")).quantize(Decimal("0.001")), time_in_force=TimeInForce.GTC,
                       reduce_only=True, client_order_id="ro")
    seen.append(same(acct, reduce))
    taker = ex.submit(symbol=SYM, side=Side.SELL, order_type=OrderType.LIMIT, quantity=Decimal(2),
                      price=(last * Decimal("0.98")).quantize(Decimal("0.001")), time_in_force=TimeInForce.IOC,
                      client_order_id="ioc")
    v.play_updates(3)
    seen.append(same(acct, taker))
    ex.cancel(SYM, order_id=resting.order_id)
    seen.append(same(acct, resting))  # canceled
    algo = ex.submit(symbol=SYM, side=Side.SELL, order_type=OrderType.STOP_MARKET, quantity=Decimal(10),
                     trigger_price=(last * Decimal("0.9")).quantize(Decimal("0.001")), algo=True,
                     client_order_id="algo")
    acct.add_algo(algo, False)
    seen.append(same(acct, algo))
    near = ex.submit(symbol="NEARUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal(10),
                     price=Decimal("1.300"), time_in_force=TimeInForce.GTX, client_order_id="near")
    seen.append(same(acct, near))  # another symbol's precisions
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("client_id", ODD_IDS)
def test_client_ids_that_need_escaping_fall_back_to_the_encoder(client_id: str) -> None:
    v = venue()
    acct = v.account()
    sim = acct.exchange.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal(10),
                               price=Decimal("4.000"), time_in_force=TimeInForce.GTC, client_order_id=client_id)
    got = same(acct, sim)
    assert json.loads(got)["clientOrderId"] == client_id
