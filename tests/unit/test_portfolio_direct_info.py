"""A direct request's order info kept as a tuple (``portfolio.direct_handlers.Light``) must read as the
:class:`OrderInfo` the bus handler makes: every later event of the order, direct or published, leaves the same rows,
fills and info. Each script here runs twice on two portfolios, once with every event published and once with the
plain MARKET request, acceptance and fill handed to the field-taking handlers where the fused path would."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import IntentAction, OrderStatus, OrderType, Side
from kinetic_empire.core.events import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderRequest,
)
from kinetic_empire.portfolio import Portfolio, direct_handlers
from kinetic_empire.portfolio.direct_handlers import OrderInfo

SYM = "FILUSDT"


def _request(cid: str, intent: str, side: Side, qty: str, kind: OrderType = OrderType.MARKET,
             price: str | None = None, strategy: str = "s1") -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=intent, strategy_id=strategy, symbol=SYM, side=side,
                        order_type=kind, quantity=D(qty), price=D(price) if price else None, ts_event=1, ts_init=1)


def _accepted(cid: str, side: Side, qty: str | None, ts: int, kind: OrderType = OrderType.MARKET,
              price: str | None = None) -> OrderAccepted:
    return OrderAccepted(client_order_id=cid, order_id=1, symbol=SYM, side=side, order_type=kind,
                         quantity=D(qty) if qty else None, price=D(price) if price else None, trigger_price=None,
                         reduce_only=False, ts_event=ts, ts_init=ts)  # fmt: skip


def _filled(cid: str, side: Side, qty: str, price: str, ts: int, status: OrderStatus = OrderStatus.FILLED,
            kind: OrderType = OrderType.MARKET) -> OrderFilled:
    return OrderFilled(client_order_id=cid, order_id=1, trade_id=ts, symbol=SYM, side=side, order_type=kind,
                       quantity=D(qty), price=D(price), commission=D("0.002"), commission_asset="USDT",
                       realized_pnl=D("0.5"), is_maker=False, status=status, ts_event=ts, ts_init=ts)  # fmt: skip


def _intent(intent: str, tag: str) -> OrderIntent:
    return OrderIntent(intent_id=intent, strategy_id="s1", symbol=SYM, action=IntentAction.OPEN_LONG,
                       reference_price=5.0, tag=tag, ts_event=1, ts_init=1)


# each step: an event; on the direct run, a plain MARKET request, acceptance or fill goes to the field-taking handler
SCRIPTS: dict[str, list[Any]] = {
    "plain round trip, tagged": [_intent("i1", "go"), _request("a", "i1", Side.BUY, "2"),
                                 _accepted("a", Side.BUY, "2", 2), _filled("a", Side.BUY, "2", "5.1", 3),
                                 _request("b", "i2", Side.SELL, "2"), _accepted("b", Side.SELL, "2", 4),
                                 _filled("b", Side.SELL, "2", "5.2", 5)],
    "partial fills, the rest published": [_request("a", "i1", Side.BUY, "3"), _accepted("a", Side.BUY, "3", 2),
                                          _filled("a", Side.BUY, "1", "5.1", 3, OrderStatus.PARTIALLY_FILLED),
                                          ("publish", _filled("a", Side.BUY, "2", "5.2", 4))],
    "rejected after the request": [_intent("i1", "t"), _request("a", "i1", Side.BUY, "2"),
                                   OrderRejected(client_order_id="a", symbol=SYM, code=-2019, reason="margin",
                                                 ts_event=2, ts_init=2)],
    "canceled after a published acceptance with a price": [
        _request("a", "i1", Side.SELL, "2"), ("publish", _accepted("a", Side.SELL, "2", 2, OrderType.LIMIT, "5.5")),
        OrderCanceled(client_order_id="a", order_id=1, symbol=SYM, reason="user", ts_event=3, ts_init=3)],
    "requested twice (the second published, a stop)": [
        _request("a", "i1", Side.BUY, "2"), _request("a", "i9", Side.SELL, "4", OrderType.STOP_MARKET, "4.9", "s2"),
        _accepted("a", Side.SELL, "4", 2), _filled("a", Side.SELL, "4", "4.9", 3)],
    "requested twice, both direct": [_intent("i2", "late"), _request("a", "i1", Side.BUY, "2", strategy=""),
                                     _request("a", "i2", Side.SELL, "3", strategy="s3"),
                                     _accepted("a", Side.SELL, "3", 2), _filled("a", Side.SELL, "3", "5", 3)],
    "accepted with another quantity, then published fill": [
        _request("a", "i1", Side.BUY, "2"), _accepted("a", Side.BUY, "2.0", 2), ("publish", _filled("a", Side.BUY,
                                                                                                     "2.0", "5", 3))],
    "accepted and filled without a request": [_accepted("x", Side.BUY, "1", 2), _filled("x", Side.BUY, "1", "5", 3),
                                              _filled("y", Side.SELL, "1", "5", 4)],
}


def _direct(pf: Portfolio, event: Any) -> bool:
    """Hand ``event`` to the field-taking handler the fused path would, if it takes that shape."""
    if isinstance(event, OrderRequest) and event.order_type is OrderType.MARKET and event.price is None:
        pf.market_requested(event.client_order_id, event.intent_id, event.strategy_id, event.side, event.quantity)
    elif isinstance(event, OrderAccepted) and event.order_type is OrderType.MARKET and event.price is None:
        pf.market_accepted(event.client_order_id, event.symbol, event.side, event.quantity, event.ts_event)
    elif isinstance(event, OrderFilled) and event.order_type is OrderType.MARKET:
        pf.market_filled(event.client_order_id, event.symbol, event.side, event.quantity, event.price,
                         event.commission, event.realized_pnl, event.status, event.ts_event)  # fmt: skip
    elif isinstance(event, OrderIntent) and event.tag:
        pf._intent_tags[event.intent_id] = event.tag
    else:
        return False
    return True


def _info(pf: Portfolio) -> dict[str, tuple[Any, ...]]:
    return {cid: tuple(getattr(pf._full_info(cid), f) for f in OrderInfo.__slots__) for cid in list(pf._info)}


def _play(script: list[Any], direct: bool) -> dict[str, Any]:
    bus = EventBus()
    pf = Portfolio(bus, D(1000))
    for step in script:
        published = isinstance(step, tuple)
        event = step[1] if published else step
        if published or not direct or not _direct(pf, event):
            bus.publish(event)
    return {key: repr(value) for key, value in {  # (repr: Decimal('2') and Decimal('2.0') differ)
        "orders": pf.orders, "fills": list(pf._fills), "fees": pf.fees_total, "trades": pf.trades, "info": _info(pf)
    }.items()}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_a_direct_request_reads_as_the_published_one(name: str) -> None:
    general, direct = _play(SCRIPTS[name], False), _play(SCRIPTS[name], True)
    assert general["orders"], "nothing recorded: nothing compared"
    assert direct == general


def test_a_direct_request_is_kept_light_until_needed() -> None:
    pf = Portfolio(EventBus(), D(1000))
    pf.market_requested("a", "i1", "s1", Side.BUY, D(2))
    assert type(pf._info["a"]) is tuple  # (what the fused path leaves: the comparison above covers both kinds)
    pf.market_accepted("a", SYM, Side.BUY, D(2), 2)
    assert type(pf._info["a"]) is tuple
    pf._full_info("a")
    assert type(pf._info["a"]) is OrderInfo and pf._info["a"] is pf._full_info("a")


def _light_without_tag(self: Portfolio, cid: str) -> OrderInfo:
    info = _FULL_INFO(self, cid)
    info.tag = ""
    return info


def _light_wrong_reason(self: Portfolio, cid: str) -> OrderInfo:
    info = _FULL_INFO(self, cid)
    if info.reason == "signal":
        info.reason = ""
    return info


def _accepted_keeps_old_quantity(self: Portfolio, cid: str, symbol: str, side: Side, quantity: D, ts: int) -> None:
    info = self._info.get(cid)
    _MARKET_ACCEPTED(self, cid, symbol, side, quantity, ts)
    if type(info) is tuple:
        self._info[cid] = info  # the accepted quantity not kept for later rows


_FULL_INFO = Portfolio._full_info
_MARKET_ACCEPTED = Portfolio.market_accepted

PLANTED = {
    "the upgrade drops the tag": (Portfolio, "_full_info", _light_without_tag),
    "the upgrade loses the signal reason": (Portfolio, "_full_info", _light_wrong_reason),
    "the light entry keeps the requested quantity": (Portfolio, "market_accepted", _accepted_keeps_old_quantity),
    "a light entry's order type empty": (direct_handlers, "_MARKET", ""),
}


@pytest.mark.parametrize("planted", list(PLANTED.values()), ids=list(PLANTED))
def test_planted_bugs_in_the_light_info_are_caught(planted: tuple[Any, str, Any]) -> None:
    owner, name, value = planted
    general = {n: _play(s, False) for n, s in SCRIPTS.items()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(owner, name, value)
        direct = {n: _play(s, True) for n, s in SCRIPTS.items()}
    assert direct != general
