"""Cheap constructors for the events every order makes (intent, request, accepted, filled, position, balance).

A frozen dataclass stores each field through ``object.__setattr__``: building the six events of one
backtest order that way cost more than the rest of its bookkeeping. Each factory here fills a writable
twin with the same slots (plain attribute stores), then re-labels it as the frozen class: the result is
an ordinary instance of the event, equal to (and as immutable as) the one the dataclass ``__init__``
builds. Fields are stored by name, so reordering an event's fields cannot shift values, and an
import-time check fails if a factory misses or invents a field. Callers pass the values positionally,
in the factory's own order; producers that guarantee the values (the risk gate, the simulated exchange)
use these, everything else keeps the keyword ``__init__``.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from .enums import BalanceReason, IntentAction, OrderStatus, OrderType, Side, TimeInForce, WorkingType
from .events import (
    BalanceChanged,
    OrderAccepted,
    OrderFilled,
    OrderIntent,
    OrderRequest,
    PositionChanged,
)

_CONTRACT = WorkingType.CONTRACT_PRICE


def _twin(cls: type) -> type:
    """A writable class with exactly ``cls``'s slots, in its order (so ``__class__`` may be swapped)."""
    return type(f"_Writable{cls.__name__}", (), {"__slots__": tuple(f.name for f in fields(cls))})


_IntentTwin = _twin(OrderIntent)
_RequestTwin = _twin(OrderRequest)
_AcceptedTwin = _twin(OrderAccepted)
_FilledTwin = _twin(OrderFilled)
_PositionTwin = _twin(PositionChanged)
_BalanceTwin = _twin(BalanceChanged)


def new_order_intent(
    intent_id: str,
    strategy_id: str,
    symbol: str,
    action: IntentAction,
    quantity: Decimal | None,
    fraction: float | None,
    stop_loss: float | None,
    take_profit: float | None,
    limit_price: float | None,
    reference_price: float,
    tag: str,
    ts_event: int,
    ts_init: int,
) -> OrderIntent:
    e: Any = _IntentTwin()
    e.intent_id = intent_id
    e.strategy_id = strategy_id
    e.symbol = symbol
    e.action = action
    e.quantity = quantity
    e.fraction = fraction
    e.stop_loss = stop_loss
    e.take_profit = take_profit
    e.limit_price = limit_price
    e.reference_price = reference_price
    e.tag = tag
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = OrderIntent
    return e


def new_market_request(
    client_order_id: str,
    intent_id: str,
    strategy_id: str,
    symbol: str,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Decimal | None,
    time_in_force: TimeInForce | None,
    reduce_only: bool,
    adjustments: tuple[str, ...],
    rules_checked: bool,
    ts_event: int,
    ts_init: int,
    trigger_price: Decimal | None = None,
    close_position: bool = False,
    working_type: WorkingType = _CONTRACT,
    callback_rate: Decimal | None = None,
    activation_price: Decimal | None = None,
) -> OrderRequest:
    """An :class:`OrderRequest` (the risk gate's entries and exits: MARKET, or LIMIT with a price)."""
    e: Any = _RequestTwin()
    e.client_order_id = client_order_id
    e.intent_id = intent_id
    e.strategy_id = strategy_id
    e.symbol = symbol
    e.side = side
    e.order_type = order_type
    e.quantity = quantity
    e.price = price
    e.trigger_price = trigger_price
    e.time_in_force = time_in_force
    e.reduce_only = reduce_only
    e.close_position = close_position
    e.working_type = working_type
    e.adjustments = adjustments
    e.callback_rate = callback_rate
    e.activation_price = activation_price
    e.rules_checked = rules_checked
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = OrderRequest
    return e


def new_order_accepted(
    client_order_id: str,
    order_id: int,
    symbol: str,
    side: Side,
    order_type: OrderType,
    quantity: Decimal | None,
    price: Decimal | None,
    trigger_price: Decimal | None,
    reduce_only: bool,
    close_position: bool,
    ts_event: int,
    ts_init: int,
) -> OrderAccepted:
    e: Any = _AcceptedTwin()
    e.client_order_id = client_order_id
    e.order_id = order_id
    e.symbol = symbol
    e.side = side
    e.order_type = order_type
    e.quantity = quantity
    e.price = price
    e.trigger_price = trigger_price
    e.reduce_only = reduce_only
    e.close_position = close_position
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = OrderAccepted
    return e


def new_order_filled(
    client_order_id: str,
    order_id: int,
    trade_id: int,
    symbol: str,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal,
    realized_pnl: Decimal,
    is_maker: bool,
    status: OrderStatus,
    reduce_only: bool,
    liquidation: bool,
    ts_event: int,
    ts_init: int,
    commission_asset: str = "USDT",
) -> OrderFilled:
    e: Any = _FilledTwin()
    e.client_order_id = client_order_id
    e.order_id = order_id
    e.trade_id = trade_id
    e.symbol = symbol
    e.side = side
    e.order_type = order_type
    e.quantity = quantity
    e.price = price
    e.commission = commission
    e.realized_pnl = realized_pnl
    e.is_maker = is_maker
    e.status = status
    e.reduce_only = reduce_only
    e.liquidation = liquidation
    e.commission_asset = commission_asset
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = OrderFilled
    return e


def new_position_changed(
    symbol: str, quantity: Decimal, entry_price: Decimal, leverage: int, ts_event: int, ts_init: int
) -> PositionChanged:
    e: Any = _PositionTwin()
    e.symbol = symbol
    e.quantity = quantity
    e.entry_price = entry_price
    e.leverage = leverage
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = PositionChanged
    return e


def new_balance_changed(
    asset: str, wallet_balance: Decimal, change: Decimal, reason: BalanceReason, ts_event: int, ts_init: int
) -> BalanceChanged:
    e: Any = _BalanceTwin()
    e.asset = asset
    e.wallet_balance = wallet_balance
    e.change = change
    e.reason = reason
    e.ts_event = ts_event
    e.ts_init = ts_init
    e.__class__ = BalanceChanged
    return e


FACTORIES: dict[type, Any] = {
    OrderIntent: new_order_intent,
    OrderRequest: new_market_request,
    OrderAccepted: new_order_accepted,
    OrderFilled: new_order_filled,
    PositionChanged: new_position_changed,
    BalanceChanged: new_balance_changed,
}
"""Each event and its factory (the tests build every event both ways and compare)."""

for _cls, _factory in FACTORIES.items():  # a field added, removed or renamed: fail at import, not in a run
    _code = _factory.__code__
    if set(_code.co_varnames[: _code.co_argcount]) != {f.name for f in fields(_cls)}:
        raise TypeError(f"{_factory.__name__} must take exactly the fields of {_cls.__name__}")
