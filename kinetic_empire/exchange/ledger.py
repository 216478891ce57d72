"""The simulated exchange's account books: wallet, positions, the order table, trades and income.

:class:`Ledger` holds the state every part of the exchange works on and applies what changes it: a
fill (position, entry, realized PnL, fees, the trade record and its events) and an order leaving the
book. The other parts (margin, funding, matching, acceptance) are mixins over this state, so a method
call on the exchange costs what it did when all of it was one class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, overload

from ..core.clock import Clock
from ..core.enums import BalanceReason, MarginType, OrderStatus, Side
from ..core.errors import ExchangeError
from ..core.event_factories import new_balance_changed, new_order_filled, new_position_changed
from ..core.events import OrderCanceled, OrderExpired
from ..core.rules import LeverageBrackets, SymbolRules
from . import isolated
from .book import _FEE_Q, NEVER, ZERO, Book
from .config import ExchangeConfig
from .cross_margin import solve_liquidation_prices
from .orders import SimOrder

_BPS = Decimal("0.0001")
_ZERO_MONEY = ZERO.quantize(_FEE_Q)
_TRADE_KEYS = ("id", "orderId", "symbol", "side", "price", "qty", "quoteQty", "commission", "realizedPnl", "maker",
               "buyer", "time")  # fmt: skip
_INCOME_KEYS = ("symbol", "incomeType", "income", "asset", "time", "info", "tranId", "tradeId")


class Rows(Sequence[dict[str, Any]]):
    """A list of dict records (userTrades, income history) kept as tuples, made into dicts when read.

    A backtest writes one trade and up to two income records per fill and reads none of them; a dict
    per record cost about a kilobyte and a microsecond each. Reads (the sandbox's endpoints, its state
    file) see the same dicts as before: indexing, slicing, iterating, ``len``, ``append`` and slice
    assignment behave like a list's. A dict read is a fresh copy: change a record by assigning it back.
    """

    __slots__ = ("_due", "_keys", "_rows")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys
        self._rows: list[tuple[Any, ...] | dict[str, Any]] = []
        self._due: list[tuple[Any, ...]] = []
        """Income only: the trade rows of fills whose income records are not written yet (the fused fill's, see
        :meth:`_settle`) and the records added after them (:meth:`add_income`); written, in order, before anything
        reads the records."""

    def _settle(self) -> None:
        """Write the income records of the fills in ``_due``, in order: what ``Ledger._record_trade`` writes for a
        trade row (its realized PnL and its commission, each when not zero, numbered in turn)."""
        rows = self._rows
        for due in self._due:
            if len(due) != 12:  # another income record, held back behind the fills before it (add_income)
                symbol, kind, amount, ts, info, trade = due
                rows.append((symbol, kind, amount, "USDT", ts, info, len(rows) + 1, trade))
                continue
            trade_id, _order, symbol, _side, _price, _qty, _quote, fee, rp, _maker, _buyer, ts = due
            info = str(trade_id)  # one string shared by both income rows
            if rp:
                rows.append((symbol, "REALIZED_PNL", rp, "USDT", ts, info, len(rows) + 1, info))
            if fee:
                rows.append((symbol, "COMMISSION", -fee, "USDT", ts, info, len(rows) + 1, info))
        self._due.clear()

    def add_income(self, symbol: str, kind: str, amount: Decimal, ts: int, info: str, trade: str) -> None:
        """Income only: ``add(symbol, kind, amount, "USDT", ts, info, len(self) + 1, trade)``; while fills' records
        are due, queued behind them (numbered when written), so a funding settlement does not write them all."""
        if self._due:
            self._due.append((symbol, kind, amount, ts, info, trade))
        else:
            self._rows.append((symbol, kind, amount, "USDT", ts, info, len(self._rows) + 1, trade))

    def add(self, *values: Any) -> None:
        """Append one record given as its values in ``keys`` order (the hot path)."""
        if self._due:
            self._settle()
        self._rows.append(values)

    def append(self, record: dict[str, Any]) -> None:
        if self._due:
            self._settle()
        self._rows.append(self._pack(record))

    def _pack(self, record: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        return tuple(record[k] for k in self._keys) if record.keys() == set(self._keys) else dict(record)

    def _dict(self, row: tuple[Any, ...] | dict[str, Any]) -> dict[str, Any]:
        return dict(row) if isinstance(row, dict) else dict(zip(self._keys, row))

    def __len__(self) -> int:
        if self._due:
            self._settle()
        return len(self._rows)

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, k: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, k: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if self._due:
            self._settle()
        if isinstance(k, slice):
            return [self._dict(r) for r in self._rows[k]]
        return self._dict(self._rows[k])

    def __setitem__(self, k: slice, records: Iterable[dict[str, Any]]) -> None:
        if self._due:
            self._settle()
        self._rows[k] = [self._pack(r) for r in records]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._due:
            self._settle()
        return (self._dict(r) for r in self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rows | list) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Rows({list(self)!r})"


class Ledger:
    """Account state and the bookkeeping of fills; the base of :class:`SimulatedExchange`."""

    bounded_liquidation_solves = True
    """False: re-solve cross liquidation prices after every kline, as before the band (the tests compare both)."""

    def __init__(
        self,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        *,
        clock: Clock,
        emit: Callable[[Any], None],
        config: ExchangeConfig | None = None,
        symbols: Iterable[str] | None = None,
    ) -> None:
        self.config = config or ExchangeConfig()
        self._clock = clock
        self._emit = emit
        self._rules = rules
        self._brackets = brackets
        self.wallet = self.config.initial_balance
        self._books: dict[str, Book] = {}
        self._orders: dict[int, SimOrder] = {}
        self._by_client: dict[tuple[str, str], SimOrder] = {}
        self._next_order_id = 1_000_001
        self._next_trade_id = 1
        self.trades = Rows(_TRADE_KEYS)  # userTrades-shaped history
        self.income = Rows(_INCOME_KEYS)  # income-history-shaped records
        self._slip = self.config.slippage_bps * _BPS
        self._cross_positions = 0  # open positions sharing the cross wallet
        for symbol in symbols or ():
            self.book(symbol)

    # ------------------------------------------------------------------------------------ symbols
    def book(self, symbol: str) -> Book:
        book = self._books.get(symbol)
        if book is None:
            rules = self._rules.get(symbol)
            if rules is None:
                raise ExchangeError(-1121, "Invalid symbol.")
            book = Book(rules, self._brackets.get(symbol), self.config.default_leverage)
            self._books[symbol] = book
        return book

    @property
    def symbols(self) -> list[str]:
        return list(self._books)

    def rules(self, symbol: str) -> SymbolRules:
        return self.book(symbol).rules

    # --------------------------------------------------------------------------------- order table
    def get_order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None) -> SimOrder:
        order = self._find(symbol, order_id, client_order_id)
        if order is None:
            raise ExchangeError(-2013, "Order does not exist.")
        return order

    def find_order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None
                   ) -> SimOrder | None:
        """:meth:`get_order`, None for an order it does not know (the sandbox looks up ids that may not exist
        on every request: no exception per look-up)."""
        return self._find(symbol, order_id, client_order_id)

    def open_orders(self, symbol: str | None = None, algo: bool | None = None) -> list[SimOrder]:
        books = [self.book(symbol)] if symbol else list(self._books.values())
        found = [o for b in books for o in (*b.market, *b.resting) if o.is_open]
        if algo is not None:  # a triggered conditional order has become a plain order
            found = [o for o in found if (o.is_algo and not o.triggered) == algo]
        return sorted(found, key=lambda o: o.order_id)

    def all_orders(self, symbol: str) -> list[SimOrder]:
        return [o for o in self._orders.values() if o.symbol == symbol]

    def _find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        if order_id is not None:
            order = self._orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        if client_order_id is not None:
            return self._by_client.get((symbol, client_order_id))
        raise ExchangeError(-1102, "Either orderId or origClientOrderId must be sent.")

    # --------------------------------------------------------------------------------- bookkeeping
    def _fill(self, book: Book, order: SimOrder, qty: Decimal, price: Decimal, maker: bool, ts: int) -> None:
        pos = book.pos
        buy = order.side is Side.BUY
        old = pos.qty
        if order.reduce_only or order.close_position:
            reducible = abs(old) if (old > 0 and not buy) or (old < 0 and buy) else ZERO
            if reducible == 0:
                self._finish(order, OrderStatus.EXPIRED, "reduce-only order with nothing to reduce")
                return
            qty = min(qty, reducible)
        caps = self.config.max_fill_qty
        if caps:
            cap = caps.get(book.symbol)
            if cap is not None and qty > cap:
                qty = cap
        signed = qty if buy else -qty
        realized = ZERO
        if old != 0 and (old > 0) != (signed > 0):  # the fill closes (some of) the position
            closing = min(abs(old), qty)
            realized = (price - pos.entry) * closing if old > 0 else (pos.entry - price) * closing
        new = old + signed
        if new == 0:
            pos.entry = ZERO
        elif old == 0 or (old > 0) == (signed > 0):  # opening or adding
            pos.entry = (abs(old) * pos.entry + qty * price) / abs(new)
        elif (old > 0) != (new > 0):
            pos.entry = price  # flipped: the remainder opened at this fill
        if old == 0 and new != 0:
            interval = self.config.funding_interval_ms
            book.next_funding = (ts // interval + 1) * interval
        elif new == 0:
            book.next_funding = NEVER
        if pos.margin_type is MarginType.ISOLATED:
            isolated.after_fill(pos, old, new, price)
        pos.qty = new
        pos.qty_f = float(new)
        pos.entry_f = float(pos.entry)
        config = self.config
        notional = price * qty
        commission = (notional * (config.maker_fee if maker else config.taker_fee)).quantize(_FEE_Q)
        realized = _ZERO_MONEY if realized is ZERO else realized.quantize(_FEE_Q)  # (ZERO quantised: 0E-8)
        change = realized - commission
        self.wallet += change
        executed = order.executed_qty + qty
        order.executed_qty = executed
        order.cum_quote += notional
        order._avg = order.cum_quote / executed  # (SimOrder.avg_price)
        order.update_time = ts
        status = order.status = OrderStatus.FILLED if executed >= order.quantity else OrderStatus.PARTIALLY_FILLED
        trade_id = self._next_trade_id
        self._next_trade_id = trade_id + 1
        self._record_trade(order, trade_id, qty, price, notional, commission, realized, maker, buy, ts)
        now = self._clock.now_ms()
        cid = order.client_order_id
        self._emit(new_order_filled(cid, order.order_id, trade_id, book.symbol, order.side, order.order_type, qty,
                                    price, commission, realized, maker, status,
                                    order.reduce_only or order.close_position, cid.startswith("autoclose-"), ts, now))
        self._after_position_change(book, ts, change, BalanceReason.ORDER, now)
        if status is OrderStatus.FILLED:
            self._remove(order)

    def _after_position_change(
        self, book: Book, ts: int, change: Decimal, reason: BalanceReason, now: int | None = None
    ) -> None:
        pos = book.pos
        if now is None:
            now = self._clock.now_ms()
        self._update_liquidation_prices()
        emit = self._emit
        emit(new_position_changed(book.symbol, pos.qty, pos.entry, pos.leverage, ts, now))
        emit(new_balance_changed("USDT", self.wallet, change, reason, ts, now))
        if book.resting or book.market:
            if pos.qty == 0:
                for order in list(book.resting):
                    if order.is_open and (order.reduce_only or order.close_position):
                        self._finish(order, OrderStatus.EXPIRED, "position closed")
            else:
                for order in list(book.resting) + list(book.market):
                    if order.is_open and order.reduce_only and not order.close_position:
                        closing = (pos.qty > 0) == (order.side is Side.SELL)
                        if not closing:
                            self._finish(order, OrderStatus.EXPIRED, "reduce-only order would increase the position")
        book.busy = bool(book.market or book.resting)

    def _emit_balance(self, change: Decimal, reason: BalanceReason, ts: int, now: int) -> None:
        self._emit(new_balance_changed("USDT", self.wallet, change, reason, ts, now))

    def _record_trade(
        self,
        order: SimOrder,
        trade_id: int,
        qty: Decimal,
        price: Decimal,
        quote: Decimal,
        fee: Decimal,
        rp: Decimal,
        maker: bool,
        buyer: bool,
        ts: int,
    ) -> None:
        symbol = order.symbol
        self.trades.add(trade_id, order.order_id, symbol, order.side._value_, price, qty, quote, fee, rp, maker, buyer,
                        ts)  # fmt: skip
        info = str(trade_id)  # one string shared by both income rows
        income = self.income
        if rp:
            income.add(symbol, "REALIZED_PNL", rp, "USDT", ts, info, len(income) + 1, info)
        if fee:
            income.add(symbol, "COMMISSION", -fee, "USDT", ts, info, len(income) + 1, info)

    def _income(self, symbol: str, kind: str, amount: Decimal, ts: int, info: str) -> None:
        self.income.add_income(symbol, kind, amount, ts, info, info if kind != "FUNDING_FEE" else "")

    def _finish(self, order: SimOrder, status: OrderStatus, reason: str) -> None:
        order.status = status
        now = self._clock.now_ms()
        order.update_time = now
        self._remove(order)
        cls = OrderCanceled if status is OrderStatus.CANCELED else OrderExpired
        self._emit(
            cls(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                symbol=order.symbol,
                reason=reason,
                ts_event=now,
                ts_init=now,
            )
        )

    def _remove(self, order: SimOrder) -> None:
        book = self._books[order.symbol]
        for queue in (book.market, book.resting):
            if order in queue:
                queue.remove(order)
        book.refresh()

    def _update_liquidation_prices(self) -> None:
        """Re-solve every open position's liquidation price after the wallet or a position changed."""
        self._cross_positions = solve_liquidation_prices(
            self._books.values(), self.wallet, banded=self.bounded_liquidation_solves
        )
