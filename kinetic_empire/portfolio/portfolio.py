"""The portfolio: the account as the bus tells it, plus the records reports are made of.

It only subscribes; it never publishes. The risk manager reads it through :class:`AccountView`; the
backtest runner reads its records after the run.

Sources of truth, so nothing is counted twice:
- wallet balance: ``BalanceChanged`` for the account asset (the exchange books PnL, fees and funding);
- positions: ``PositionChanged``;
- round-trip trades, fee total: ``OrderFilled``. A liquidation is the simulated exchange's order of
  events: a fill with ``liquidation=True`` closes the trade, then ``Liquidated`` (same symbol and
  ``ts_event``) adds its ``fee``, the insurance clearance fee, to the trade and the fee total. A
  ``Liquidated`` with no fill before it closes the trade from its own price, PnL and fee, and a
  liquidation fill arriving after it is logged but not booked again;
- funding total: ``FundingApplied``.

Prices come from the bus too, in backtests and live alike: the close of the latest ``KlineClosed`` of
each symbol. Equity is not recomputed per kline: the kline handler only keeps the kline. The equity
curve is built in bulk after the run by :meth:`Portfolio.equity_curve` from the recorded change points.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from ..core.account import PositionView
from ..core.bus import EventBus
from ..core.enums import OrderStatus, OrderType, Side
from ..core.events import (
    BalanceChanged,
    FundingApplied,
    KlineClosed,
    Liquidated,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderRequest,
    PositionChanged,
    RiskDenied,
)
from .curve import floats, step_lookup, step_lookups
from .direct_handlers import DirectHandlers, Light, OrderInfo
from .prices import CoverBound, LatestClose, available_balance
from .records import DenialRecord, OrderRecord, TradeRecord
from .trades import TradeBook
from .views import _WritablePositionView

_ZERO = Decimal(0)

# the exit reason of an order, read from what it is (its strategy comes from its OrderRequest)
_REASON_BY_TYPE = {
    OrderType.STOP._value_: "stop_loss",
    OrderType.STOP_MARKET._value_: "stop_loss",
    OrderType.TRAILING_STOP_MARKET._value_: "stop_loss",
    OrderType.TAKE_PROFIT._value_: "take_profit",
    OrderType.TAKE_PROFIT_MARKET._value_: "take_profit",
}  # by the type's value: an enum member hashes in Python, its string in C


_BUY = Side.BUY
_MARKET = OrderType.MARKET._value_
_ORDER_FIELDS = ("ts", "client_order_id", "strategy_id", "symbol", "side", "order_type", "quantity", "price", "status",
                 "reason", "tag")  # OrderRecord's fields, in the order of the rows  # fmt: skip
_NEW, _REJECTED, _CANCELED, _EXPIRED = (s._value_ for s in (OrderStatus.NEW, OrderStatus.REJECTED,
                                                           OrderStatus.CANCELED, OrderStatus.EXPIRED))  # fmt: skip


class Portfolio(DirectHandlers):
    """Account state and run records, built only from events on ``bus``.

    Implements :class:`kinetic_empire.core.account.AccountView`. ``asset`` is the margin asset whose
    ``BalanceChanged`` events move the wallet.
    """

    def __init__(
        self,
        bus: EventBus,
        initial_balance: Decimal,
        leverage_default: int = 1,
        *,
        asset: str = "USDT",
        follow_prices: bool = True,
    ) -> None:
        """``follow_prices=False`` defers the price subscription to :meth:`subscribe_prices`, for a
        builder that must subscribe the execution port's kline handler first (see there)."""
        self.initial_balance = Decimal(initial_balance)
        self.asset = asset
        self._bus = bus
        self._wallet = self.initial_balance
        self._leverage_default = leverage_default
        self._leverage: dict[str, int] = {}
        self._positions: dict[str, PositionView] = {}  # open positions only
        self._flat: dict[str, PositionView] = {}  # the flat view of a symbol, made once per leverage
        self._closes: dict[str, LatestClose] = {}  # symbol -> its latest close
        self._marks: dict[str, tuple[float, Decimal]] = {}  # symbol -> (close, its Decimal), see _mark
        # the float bound on the available balance: told the symbol of each change of a position, leverage or store
        # (one attribute: past 30, an instance's attributes no longer share their keys, and every read costs more)
        self._cover = CoverBound(self)
        self._info: dict[str, OrderInfo | Light] = {}  # (a Light entry until a bus handler needs the object)
        self._intent_tags: dict[str, str] = {}  # intent id -> the strategy's tag (tagged intents only)
        self._book = TradeBook()
        self._fills = self._book.pending  # fills waiting to be booked into round trips (see TradeBook)
        self._liquidations: dict[tuple[str, int], str] = {}  # (symbol, ts) -> "fill" | "event"
        self._denials_by_code: dict[str, int] = {}
        self._wallet_ts: list[int] = []
        # change points keep the events' Decimals (a pointer each): made floats in bulk when a history is read
        self._wallet_val: list[Decimal] = []
        self._pos_hist: dict[str, tuple[list[int], list[Decimal], list[Decimal]]] = {}
        self._order_rows: list[tuple[Any, ...]] = []  # OrderRecord fields in order; records built when read
        self._orders: list[OrderRecord] = []
        self.denials: list[DenialRecord] = []
        self.fees_total = _ZERO
        """Sum of commissions (and liquidation fees), positive = paid."""
        self.funding_total = _ZERO
        """Sum of funding amounts, signed from the account's side (negative = paid)."""
        self.funding_received = _ZERO
        """Sum of the funding settlements the account received (positive amounts)."""
        self.funding_paid = _ZERO
        """Sum of the funding settlements the account paid, as a positive number."""
        self._subscriptions: list[tuple[type, Any, Hashable | None]] = [
            (OrderIntent, self._on_intent, None),
            (OrderRequest, self._on_request, None),
            (OrderAccepted, self._on_accepted, None),
            (OrderRejected, self._on_rejected, None),
            (OrderCanceled, self._on_canceled, None),
            (OrderExpired, self._on_expired, None),
            (OrderFilled, self._on_filled, None),
            (PositionChanged, self._on_position, None),
            (BalanceChanged, self._on_balance, None),
            (FundingApplied, self._on_funding, None),
            (Liquidated, self._on_liquidated, None),
            (RiskDenied, self._on_denied, None),
        ]
        if follow_prices:
            self._subscriptions.insert(0, (KlineClosed, self._on_kline, None))
        for event_type, handler, topic in self._subscriptions:
            bus.subscribe(event_type, handler, topic)

    @property
    def orders(self) -> list[OrderRecord]:
        """One row per order event, in arrival order. Kept as tuples while the run writes them (a backtest
        writes thousands and reads them once, for the report) and made into records when read."""
        made, rows = self._orders, self._order_rows
        if len(made) < len(rows):
            made.extend(OrderRecord(**dict(zip(_ORDER_FIELDS, row))) for row in rows[len(made) :])
        return made

    def subscribe_prices(self, topics: Iterable[tuple[str, str]] | None = None) -> None:
        """Follow closed klines for prices: every kline, or only those of ``topics`` (symbol, timeframe).

        For a portfolio built with ``follow_prices=False``. Subscribed after the execution port, a
        simulated exchange has matched a kline (fills at its open, triggers in its range) before the
        portfolio marks positions at its close: equity seen while those fills are booked is marked at
        the previous close, as the exchange's own is.

        The portfolio reads only the latest close of each symbol: each symbol's :class:`~.prices.LatestClose`
        keeps it. With ``topics`` (a backtest knows every series it replays) its handler is subscribed per
        topic, so the replay runs it inline (see there why) and the act-mask replay (``backtest.skip``) knows it.
        """
        if any(event_type is KlineClosed for event_type, _h, _t in self._subscriptions):
            return
        if topics is None:
            added: list[tuple[type, Any, Hashable | None]] = [(KlineClosed, self._on_kline, None)]
        else:
            added = [(KlineClosed, self._close_of(t[0]).on_kline, t) for t in dict.fromkeys(topics)]
        for event_type, handler, topic in added:
            self._subscriptions.append((event_type, handler, topic))
            self._bus.subscribe(event_type, handler, topic)

    def close(self) -> None:
        """Stop listening (the records stay readable)."""
        for event_type, handler, topic in self._subscriptions:
            self._bus.unsubscribe(event_type, handler, topic)
        self._subscriptions = []

    # ------------------------------------------------------------------------------- engine wiring

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._leverage[symbol] = leverage
        self._flat.pop(symbol, None)
        self._cover.stale[symbol] = None

    # ------------------------------------------------------------------------------- AccountView

    def wallet_balance(self) -> Decimal:
        return self._wallet

    def equity(self) -> Decimal:
        upnl = _ZERO
        for p in self._positions.values():
            upnl += p.quantity * (self._mark(p) - p.entry_price)
        return self._wallet + upnl

    def available_balance(self) -> Decimal:
        """Equity minus initial margin, the margin taken at the latest price (entry before any kline): one pass
        over the positions (the risk gate asks on every entry), summing as :meth:`equity` does."""
        if not self._positions:  # (the sums of no positions, the same Decimal zero: the wallet's own digits)
            return (self._wallet + _ZERO) - _ZERO
        return available_balance(self._wallet, self._positions, self._closes, self._marks, self._leverage,
                                 self._leverage_default, self._mark)  # fmt: skip

    @property
    def available_covers(self) -> Callable[[float], bool]:
        """``available_covers(amount)``: True when :meth:`available_balance` is certainly above ``amount`` and zero
        (a float bound, :class:`~.prices.CoverBound`); False: ask. The bound's own method (the risk gate binds it
        once: one call less per entry)."""
        return self._cover.covers

    def position(self, symbol: str) -> PositionView:
        found = self._positions.get(symbol)
        if found is not None:
            return found
        flat = self._flat.get(symbol)  # the risk gate asks on every intent: one frozen view while flat
        if flat is None:
            flat = self._flat[symbol] = PositionView(symbol, _ZERO, _ZERO, self.leverage(symbol))
        return flat

    def positions(self) -> list[PositionView]:
        return [self._positions[s] for s in sorted(self._positions)]

    def open_position_count(self) -> int:
        """``len([p for p in positions() if p.quantity != 0])``: only open positions are kept."""
        return len(self._positions)

    def last_price(self, symbol: str) -> float:
        return closes.close if (closes := self._closes.get(symbol)) is not None else 0.0

    def leverage(self, symbol: str) -> int:
        return self._leverage.get(symbol, self._leverage_default)

    def _mark(self, p: PositionView) -> Decimal:
        last = self.last_price(p.symbol)
        if not last:
            return p.entry_price
        cached = self._marks.get(p.symbol)
        if cached is None or cached[0] != last:  # the Decimal of a close made once, not per account query
            cached = self._marks[p.symbol] = (last, Decimal(repr(float(last))))
        return cached[1]

    # ------------------------------------------------------------------------------- records

    @property
    def trades(self) -> list[TradeRecord]:
        """Closed round trips, in the order they closed."""
        return list(self._book.closed)

    def open_trades(self, ts: int) -> list[TradeRecord]:
        """Trades still open, as records marked at the last price at ``ts`` (exit_reason ``"open"``)."""
        marks = {s: (self._mark(p), p.quantity, p.entry_price) for s, p in self._positions.items()}
        return self._book.marked(ts, marks)

    @property
    def denials_by_code(self) -> dict[str, int]:
        """Risk denials counted by code, sorted by code."""
        return dict(sorted(self._denials_by_code.items()))

    @property
    def liquidation_count(self) -> int:
        return len(self._liquidations)

    def wallet_history(self) -> tuple[np.ndarray, np.ndarray]:
        """(ts, wallet) at each balance change, before the first one the wallet is the initial balance."""
        return np.asarray(self._wallet_ts, dtype=np.int64), floats(self._wallet_val)

    def position_history(self, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts, signed qty, entry price) at each position change of ``symbol``."""
        ts, qty, entry = self._pos_hist.get(symbol, ([], [], []))
        return np.asarray(ts, dtype=np.int64), floats(qty), floats(entry)

    def symbols_traded(self) -> list[str]:
        return sorted(self._pos_hist)

    def equity_curve(self, timestamps: np.ndarray, closes: Mapping[str, np.ndarray]) -> np.ndarray:
        """Equity marked at each kline's close, computed in bulk from the recorded change points.

        ``timestamps`` are the klines' close times (``KlineClosed.ts_event``), ascending, and
        ``closes[symbol]`` the close prices aligned to them (NaN where a symbol has no kline is fine
        while flat). A change stamped ``ts <= t`` is in effect at ``t``, so a fill inside a kline is
        marked at that kline's close:

            equity[t] = wallet(t) + sum over symbols of qty(t) * (close[t] - entry(t))
        """
        ts = np.asarray(timestamps, dtype=np.int64)
        wts, wval = self.wallet_history()
        equity = step_lookup(wts, wval, ts, float(self.initial_balance))
        for symbol in self.symbols_traded():
            hts, hqty, hentry = self.position_history(symbol)
            qty, upnl = step_lookups(hts, (hqty, hentry), ts, 0.0)  # upnl holds the entry price until below
            held = qty != 0
            if not held.any():
                continue
            if symbol not in closes:
                raise KeyError(f"equity_curve: no closes for {symbol}, which held a position")
            close = np.asarray(closes[symbol], dtype=np.float64)
            if close.shape != ts.shape:
                raise ValueError(f"equity_curve: closes[{symbol}] has shape {close.shape}, expected {ts.shape}")
            np.subtract(close, upnl, out=upnl)  # in place: qty * (close - entry) where held
            upnl *= qty
            upnl[~held] = 0.0  # flat: no PnL (and a NaN close while flat is fine)
            equity += upnl
        return equity

    def exposure_mask(self, timestamps: np.ndarray) -> np.ndarray:
        """True where any position is open at the timestamp (same convention as the equity curve)."""
        ts = np.asarray(timestamps, dtype=np.int64)
        mask = np.zeros(ts.shape, dtype=bool)
        for symbol in self.symbols_traded():
            hts, hqty, _ = self.position_history(symbol)
            mask |= step_lookup(hts, hqty, ts, 0.0) != 0
        return mask

    def exposure_fraction(self, timestamps: np.ndarray) -> float:
        """Share of bars with an open position, 0.0 for no bars."""
        mask = self.exposure_mask(timestamps)
        return float(mask.mean()) if mask.size else 0.0

    # ------------------------------------------------------------------------------- handlers

    def _close_of(self, symbol: str) -> LatestClose:
        store = self._closes.get(symbol)
        if store is None:
            store = self._closes[symbol] = LatestClose()
            self._cover.store_made(symbol)
        return store

    def _on_kline(self, event: KlineClosed) -> None:
        self._close_of(event.symbol).close = event.close

    def _log(self, ts: int, cid: str, symbol: str, status: str, reason: str, **shape: object) -> None:
        info = self._full_info(cid)
        for name, value in shape.items():
            if value is not None and value != "":
                setattr(info, name, value)
        self._order_rows.append((ts, cid, info.strategy_id, symbol, info.side, info.order_type, info.quantity,
                                 info.price, status, reason, info.tag))  # fmt: skip

    def _on_intent(self, event: OrderIntent) -> None:
        if event.tag:
            self._intent_tags[event.intent_id] = event.tag

    def _on_request(self, event: OrderRequest) -> None:
        cid = event.client_order_id
        info = self._info.get(cid)
        if type(info) is not OrderInfo:  # (new, or a direct request's Light entry)
            info = self._full_info(cid)
        order_type = info.order_type = event.order_type._value_  # (`.value` is a slower descriptor)
        if not info.strategy_id:
            info.strategy_id = event.strategy_id
        if not info.reason:
            info.reason = _REASON_BY_TYPE.get(order_type, "signal")
        if info.reason == "signal" and not info.tag:  # a stop or target placed for a tagged entry is not tagged
            info.tag = self._intent_tags.get(event.intent_id, "")
        info.side = event.side._value_
        info.quantity = event.quantity
        info.price = event.price if event.price is not None else event.trigger_price

    def _on_accepted(self, e: OrderAccepted) -> None:
        """What :meth:`_log` does, inlined (one row per order on the backtest's order path): the event's
        shape overrides the request's where it has one."""
        cid = e.client_order_id
        info = self._info.get(cid)
        if type(info) is not OrderInfo:
            info = self._full_info(cid)
        side = info.side = e.side._value_  # enum values are never empty
        order_type = info.order_type = e.order_type._value_
        quantity = e.quantity
        if quantity is not None:
            info.quantity = quantity
        price = e.price
        if price is None:
            price = e.trigger_price
        if price is not None:
            info.price = price
        self._order_rows.append((e.ts_event, cid, info.strategy_id, e.symbol, side, order_type, info.quantity,
                                 info.price, _NEW, info.reason, info.tag))  # fmt: skip

    def _on_rejected(self, e: OrderRejected) -> None:
        self._log(e.ts_event, e.client_order_id, e.symbol, _REJECTED, f"{e.code}: {e.reason}")

    def _on_canceled(self, e: OrderCanceled) -> None:
        self._log(e.ts_event, e.client_order_id, e.symbol, _CANCELED, e.reason)

    def _on_expired(self, e: OrderExpired) -> None:
        self._log(e.ts_event, e.client_order_id, e.symbol, _EXPIRED, e.reason)

    def _on_filled(self, e: OrderFilled) -> None:
        cid = e.client_order_id
        info = self._info.get(cid)
        if type(info) is not OrderInfo:
            info = self._full_info(cid)
        reason = "liquidation" if e.liquidation else info.reason
        side = e.side
        self._order_rows.append((e.ts_event, cid, info.strategy_id, e.symbol, side._value_, e.order_type._value_,
                                 e.quantity, e.price, e.status._value_, reason, info.tag))  # fmt: skip
        if e.liquidation:
            key = (e.symbol, e.ts_event)
            if self._liquidations.setdefault(key, "fill") == "event":
                return  # a Liquidated event without a fill before it already closed the trade
        fee = e.commission if e.commission_asset == self.asset else _ZERO  # a BNB fee leaves the BNB wallet
        self.fees_total += fee
        # booked into round trips when the trades are next needed (TradeBook.pending), in this order
        self._fills.append((e.symbol, e.quantity if side is _BUY else -e.quantity, e.price, e.realized_pnl, fee,
                            e.ts_event, info.strategy_id, reason or "unknown", "" if e.liquidation else info.tag))

    def _on_position(self, e: PositionChanged) -> None:
        self.position_changed(e.symbol, e.quantity, e.entry_price, e.leverage, e.ts_event)

    def position_changed(self, symbol: str, quantity: Decimal, entry_price: Decimal, leverage: int, ts: int) -> None:
        """:meth:`_on_position` with the event's fields (a backtest's direct delivery calls it without the event)."""
        if self._leverage.get(symbol) != leverage:
            self._leverage[symbol] = leverage
            self._flat.pop(symbol, None)
        if quantity:  # (position_view, inlined: one is made per opening fill)
            v: Any = _WritablePositionView()
            v.symbol = symbol
            v.quantity = quantity
            v.entry_price = entry_price
            v.leverage = leverage
            v.__class__ = PositionView
            self._positions[symbol] = v
            self._cover.stale[symbol] = None
        else:  # (the bound's record goes at once: a position closed before the next entry is never made one)
            self._positions.pop(symbol, None)
            cover = self._cover
            cover.stale.pop(symbol, None)
            cover.records.pop(symbol, None)
        hist = self._pos_hist.get(symbol)
        if hist is None:
            hist = self._pos_hist[symbol] = ([], [], [])
        hist[0].append(ts)
        hist[1].append(quantity)
        hist[2].append(entry_price)

    def _on_balance(self, e: BalanceChanged) -> None:
        if e.asset != self.asset:
            return
        self._wallet = e.wallet_balance
        self._wallet_ts.append(e.ts_event)
        self._wallet_val.append(e.wallet_balance)

    def _on_funding(self, e: FundingApplied) -> None:
        self.funding_total += e.amount
        if e.amount > 0:
            self.funding_received += e.amount
        else:
            self.funding_paid -= e.amount
        self._book.add_funding(e.symbol, e.amount)

    def _on_liquidated(self, e: Liquidated) -> None:
        key = (e.symbol, e.ts_event)
        self.fees_total += e.fee
        if self._liquidations.setdefault(key, "event") == "fill":
            # the liquidation fill closed the trade and booked its PnL and commission; the event's
            # fee is the insurance clearance fee on top of it
            self._book.add_fee(e.symbol, e.fee, e.ts_event)
        else:
            self._book.force_close(e.symbol, e.price, e.realized_pnl, e.fee, e.ts_event)

    def _on_denied(self, e: RiskDenied) -> None:
        self.denials.append(DenialRecord(
            ts=e.ts_event, intent_id=e.intent_id, strategy_id=e.strategy_id,
            symbol=e.symbol, code=e.code, message=e.message,
        ))  # fmt: skip
        self._denials_by_code[e.code] = self._denials_by_code.get(e.code, 0) + 1
