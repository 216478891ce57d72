"""Every fact and command that travels on the bus, as frozen, slotted, keyword-only dataclasses.

Each event carries ``ts_event`` (exchange time, epoch ms) and ``ts_init`` (when we created it, epoch ms).
Prices and quantities that reach the exchange are ``Decimal``; market data stays ``float`` because it
feeds indicator math and per-kline comparisons only.

Frozen dataclasses are slow to build (each field goes through ``object.__setattr__``). That matters only
for the one event built per kline, so :func:`new_kline` is the one fast path: a positional constructor
that stores the fields by name and builds the identical object (a test checks equality) at a fraction
of the cost. Every other event uses the ordinary dataclass ``__init__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar, dataclass_transform

from .enums import (
    BalanceReason,
    IntentAction,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    WorkingType,
)

E = TypeVar("E")


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
def _event(cls: type[E]) -> type[E]:
    """Frozen, slotted, keyword-only dataclass: the shape of every event."""
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


# ----------------------------------------------------------------------------------------- market data


class KlineFields:
    """The slots of :class:`KlineClosed`, writable: only :func:`new_kline` and the replay feed's compiled
    handler chain fill one, and they re-label it as a ``KlineClosed`` before anyone sees it."""

    __slots__ = ("close", "high", "low", "open", "open_time", "symbol", "timeframe", "ts_event", "ts_init", "volume")


@dataclass(frozen=True, kw_only=True)
class KlineClosed(KlineFields):
    """A kline that has closed; strategies only ever see these.

    Frozen and slotted like every event, with its slots declared on a writable base class so the one
    event built per kline can be filled without the frozen ``__setattr__`` (:func:`new_kline`).
    """

    __slots__ = ()

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ts_event: int  # the kline's close time (open_time + interval - 1)
    ts_init: int

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle and copy by value (the default would set slots through the frozen ``__setattr__``)."""
        return new_kline, tuple(getattr(self, name) for name in _NEW_KLINE_ARGS)


@_event
class MarkPriceUpdated:
    """Binance's ``<symbol>@markPrice@1s``: the mark and index price, and the funding rate that will be
    applied at ``next_funding_time`` (Binance's current, predicted rate; ``r`` on the wire)."""

    symbol: str
    mark_price: float
    funding_rate: float
    next_funding_time: int
    index_price: float = 0.0  # 0.0 where the source has none (a backtest replaying mark-price klines)
    ts_event: int
    ts_init: int


@_event
class TickerUpdated:
    """Binance's rolling 24 h ticker of one symbol (``<symbol>@ticker``); a backtest derives it from klines."""

    symbol: str
    last_price: float
    open_price: float  # 24 h ago
    high_price: float
    low_price: float
    volume: float  # base asset, over the 24 h
    quote_volume: float
    price_change_percent: float
    ts_event: int
    ts_init: int


# ------------------------------------------------------------------------------------------- commands


@_event
class OrderIntent:
    """A strategy's wish, before sizing and checks. ``quantity`` None means: let the sizer decide."""

    intent_id: str
    strategy_id: str
    symbol: str
    action: IntentAction
    quantity: Decimal | None = None
    fraction: float | None = None  # for REDUCE: share of the current position
    stop_loss: float | None = None
    take_profit: float | None = None
    limit_price: float | None = None
    reference_price: float  # the close the strategy decided on
    tag: str = ""
    ts_event: int
    ts_init: int


@_event
class OrderRequest:
    """An order that passed the risk manager, already rounded to the symbol's grid."""

    client_order_id: str
    intent_id: str
    strategy_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None  # None only with close_position
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    close_position: bool = False
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    adjustments: tuple[str, ...] = ()
    callback_rate: Decimal | None = None  # TRAILING_STOP_MARKET: percent, 0.1-10 (Binance's callbackRate)
    activation_price: Decimal | None = None  # TRAILING_STOP_MARKET: Binance's activatePrice (None: the last price)
    rules_checked: bool = False
    """The risk gate ran ``SymbolRules.check_order`` on exactly these values: an in-process exchange holding
    the same rules (the backtest's) may skip its own filter check. Over the wire it means nothing: the
    sandbox and Binance check every order they receive."""
    ts_event: int
    ts_init: int


@_event
class ProtectionIntent:
    """A strategy moves the stop (``kind="stop"``) or take-profit (``"take_profit"``) of its open position.

    ``price`` is a fixed trigger; for a stop, ``trail_pct`` instead asks for a trailing stop (Binance's
    TRAILING_STOP_MARKET, callback rate in percent) armed at ``activation_price`` (None: at once). The risk
    manager places the new order first and cancels the old one only once the new one is accepted, so the
    position is never without its protection in between.
    """

    intent_id: str
    strategy_id: str
    symbol: str
    kind: str  # "stop" or "take_profit"
    price: float | None = None
    trail_pct: float | None = None
    activation_price: float | None = None
    reference_price: float  # the close the strategy decided on
    tag: str = ""
    ts_event: int
    ts_init: int


@_event
class TargetPositionIntent:
    """A strategy states the signed position it wants (``quantity`` in base units, or ``notional`` in USDT at
    the reference price); the risk manager computes, rounds and checks the order(s) that get there."""

    intent_id: str
    strategy_id: str
    symbol: str
    quantity: Decimal | None = None  # signed: > 0 long, < 0 short, 0 flat
    notional: float | None = None  # signed
    reference_price: float
    tag: str = ""
    ts_event: int
    ts_init: int


@_event
class CancelRequest:
    client_order_id: str
    symbol: str
    strategy_id: str
    ts_event: int
    ts_init: int


@_event
class CancelAllRequest:
    """Cancel every open order (plain and conditional) on one symbol: journaled like any command."""

    symbol: str
    strategy_id: str  # who asked: a strategy, "operator", "shutdown"
    cause: str = ""
    ts_event: int
    ts_init: int


@_event
class OperatorCommand:
    """A command from outside the strategies (shutdown, a future API or dashboard) for the risk gate.

    ``action`` is ``"flatten"`` (cancel every order, close every position with reduce-only market
    orders) or ``"cancel_all"``; an empty ``symbols`` means every traded symbol. The risk manager's
    command handler turns it into the same requests a strategy's intents become, so it is checked,
    journaled and executed like them.
    """

    action: str
    symbols: tuple[str, ...] = ()
    source: str  # "shutdown", "operator", ...
    cause: str = ""
    ts_event: int
    ts_init: int


# ------------------------------------------------------------------------------------ order lifecycle


@_event
class OrderAccepted:
    client_order_id: str
    order_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None
    reduce_only: bool
    close_position: bool = False
    ts_event: int
    ts_init: int


@_event
class OrderAmended:
    """A resting LIMIT order's price or quantity changed in place (Binance's modify order, PUT /fapi/v1/order)."""

    client_order_id: str
    order_id: int
    symbol: str
    quantity: Decimal
    price: Decimal
    ts_event: int
    ts_init: int


@_event
class OrderRejected:
    client_order_id: str
    symbol: str
    code: int  # Binance's error code
    reason: str
    ts_event: int
    ts_init: int


@_event
class OrderOutcomeUnknown:
    """A request left and no answer says whether it executed (timeout, 5xx, unreadable reply): the port
    looks it up by client id and never resends it. ``opens``: it could open or grow a position."""

    client_order_id: str
    symbol: str
    opens: bool
    reason: str
    ts_event: int
    ts_init: int


@_event
class OrderCanceled:
    client_order_id: str
    order_id: int
    symbol: str
    reason: str = ""
    ts_event: int
    ts_init: int


@_event
class OrderExpired:
    client_order_id: str
    order_id: int
    symbol: str
    reason: str = ""
    ts_event: int
    ts_init: int


@_event
class OrderFilled:
    client_order_id: str
    order_id: int
    trade_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal
    commission: Decimal
    realized_pnl: Decimal
    is_maker: bool
    status: OrderStatus  # FILLED or PARTIALLY_FILLED after this fill
    reduce_only: bool = False
    liquidation: bool = False
    commission_asset: str = "USDT"  # the asset ``commission`` is counted in (Binance's ``N``: BNB when BNB pays fees)
    ts_event: int
    ts_init: int


# ------------------------------------------------------------------------------------ account changes


@_event
class PositionChanged:
    symbol: str
    quantity: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    leverage: int
    ts_event: int
    ts_init: int


@_event
class BalanceChanged:
    asset: str
    wallet_balance: Decimal
    change: Decimal
    reason: BalanceReason
    ts_event: int
    ts_init: int


@_event
class FundingApplied:
    symbol: str
    funding_rate: Decimal
    mark_price: Decimal
    position_quantity: Decimal
    amount: Decimal  # signed, from the account's point of view
    ts_event: int
    ts_init: int


@_event
class Liquidated:
    symbol: str
    quantity: Decimal  # signed position that was closed
    price: Decimal
    realized_pnl: Decimal
    fee: Decimal
    ts_event: int
    ts_init: int


# ------------------------------------------------------------------------------------ risk decisions


@_event
class RiskDenied:
    """An intent the risk manager refused; ``code`` is machine-readable, ``message`` says the values."""

    intent_id: str
    strategy_id: str
    symbol: str
    code: str
    message: str
    ts_event: int
    ts_init: int


@_event
class TradingStateChanged:
    state: TradingState
    previous: TradingState
    cause: str
    symbol: str | None = None  # None: account-wide
    ts_event: int
    ts_init: int


@_event
class StrategyHalted:
    strategy_id: str
    error: str
    ts_event: int
    ts_init: int


@_event
class Alert:
    """Something an operator must see: a position without its stop, a stale feed, weight near the limit.

    ``kind`` is a stable machine name (``unprotected_position``, ``stale_feed``, ``weight_high``,
    ``reject_rate``, ``reconcile_mismatch``, ...); ``cleared`` is True when the condition has ended, so
    a status view or dashboard can show what is active now. ``symbol`` is None for account-wide alerts.
    """

    kind: str
    message: str
    symbol: str | None = None
    severity: str = "warning"  # "warning" or "critical"
    cleared: bool = False
    ts_event: int
    ts_init: int


@_event
class StrategyStateSaved:
    """A strategy's ``self.state`` after a handler changed it (JSON-safe); a resumed run restores the last one."""

    strategy_id: str
    symbol: str
    state: dict[str, Any] = field(default_factory=dict)
    ts_event: int
    ts_init: int


@_event
class Note:
    """Free-form structured note for logs and the journal (e.g. a feed gap being backfilled)."""

    topic: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    ts_event: int
    ts_init: int


# ------------------------------------------------------------------------------ the per-kline fast path


def new_kline(
    symbol: str,
    timeframe: str,
    open_time: int,
    open: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    ts_event: int,
    ts_init: int,
) -> KlineClosed:
    """Build a :class:`KlineClosed` positionally, without the frozen ``__init__``'s per-field calls.

    The fields are stored by name into the writable base (plain slot stores), then the object is
    re-labelled as its subclass ``KlineClosed``, which adds nothing to the layout (so the re-labelling
    is a pointer swap, with no slot-by-slot layout comparison). The result is an ordinary frozen
    instance: equal, hashable, immutable, and ``type(k) is KlineClosed``.
    """
    k: Any = KlineFields()
    k.symbol = symbol
    k.timeframe = timeframe
    k.open_time = open_time
    k.open = open
    k.high = high
    k.low = low
    k.close = close
    k.volume = volume
    k.ts_event = ts_event
    k.ts_init = ts_init
    k.__class__ = KlineClosed
    return k


_NEW_KLINE_ARGS = new_kline.__code__.co_varnames[: new_kline.__code__.co_argcount]  # field names, in its order

if set(_NEW_KLINE_ARGS) != set(KlineFields.__slots__) or {
    f.name for f in fields(KlineClosed)
} != set(KlineFields.__slots__):
    raise TypeError("new_kline, KlineFields and KlineClosed must name the same fields")  # one was changed alone
