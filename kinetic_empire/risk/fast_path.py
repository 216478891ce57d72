"""The backtest's short way through the risk gate: a plain market entry from flat, a close, or a flip.

A backtest spends most of an order's time in the gate's general decision (:mod:`.decision`), which handles
every intent shape (limits, stops, flips, adds, caps that bind, every guard). Nearly every intent of a
backtest is the plain case: a MARKET entry with no price, stop or target on a flat symbol, a CLOSE, or such an
entry against an open opposite position (a flip: :meth:`FastIntents.flip`, the position's close, then the entry,
sized from a fixed quantity, a fixed notional or a percent of equity). For those :class:`FastIntents` runs the
same steps in the same order, with the same Decimal expressions on the same operands, and with what cannot
change during a run (the symbol's rules, brackets, leverage, the cap's notional and margin rate, whether the
guards are configured) looked up once per symbol.

It answers only when the general decision would let the intent through unchanged by any branch it leaves
out; for anything else (a denial, a cap that binds, a configured exposure or liquidation guard, an open
position to add to, a split at the max quantity) it returns None and the general decision decides,
so a denial's wording or an unusual order's shape can never differ. Requests it makes are stamped as
checked: its entries are on the lot grid by construction, within the min and max quantity and the min
notional (checked above), for a symbol whose status is TRADING, which is all ``check_market_order`` would
check; what a close sends for a position size (its rounding, whether the check passes) is worked out once
per size and kept.

Three Decimal comparisons are first tried as float bounds, with room for the roundings (``_ROOM``): the margin
the available balance covers, the bracket's cap and the min notional. A bound only ever skips a comparison whose
answer it shows; where it cannot (near a limit, or a Decimal context of fewer than 28 digits) the Decimal
comparison decides, so the answers are the same, not nearly the same.

The composition roots turn it on (:meth:`RiskManager.use_fast_path`): a backtest with its fused order path, and
every live run (what cannot change during a run does not change in one either: the rules, brackets and leverage
are fixed at start; the portfolio's cover bound follows the venue's position and balance events as it follows the
simulated ones). tests/unit/test_fused_order_path.py runs both on the same intents and backtests,
tests/unit/test_risk_fast_bounds.py at the last digits of each bound's limit, and tests/unit/test_risk_fast_flips.py
the flips at theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, getcontext

from ..core.account import AccountView
from ..core.enums import IntentAction, OrderType, Side, TradingState
from ..core.errors import ConfigError
from ..core.event_factories import new_market_request
from ..core.events import OrderIntent, OrderRequest
from ..core.rules import LeverageBrackets, SymbolRules
from . import ids
from .config import RiskConfig, SizingConfig, SizingMethod
from .decision import (
    IntentDecider,
    PendingEntry,
    _dec,  # the general decision's float-price conversion, the same answers
)
from .guards import MAX_QUANTITY, fmt
from .state import TradingStates

ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_OPEN_LONG, _OPEN_SHORT, _CLOSE = IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT, IntentAction.CLOSE
_MARKET = OrderType.MARKET
_BUY, _SELL = Side.BUY, Side.SELL
# (members read once: an attribute of an enum class goes through its metaclass's __getattr__ hook, a slow lookup)
_HALTED = TradingState.HALTED
_ENTRY_TAIL, _CLOSE_TAIL = "-" + ids.ENTRY, "-" + ids.CLOSE  # ids.client_id's tails for a first part
_VALID = ids.VALID
_FIXED_QUANTITY, _FIXED_NOTIONAL = SizingMethod.FIXED_QUANTITY, SizingMethod.FIXED_NOTIONAL
_PERCENT_EQUITY = SizingMethod.PERCENT_EQUITY

Decided = tuple[list[OrderRequest], PendingEntry | None]
Plain = tuple[str, Side, Decimal, bool, tuple[str, ...], bool]
"""A plain MARKET request's fields: (client id, side, quantity, reduce only, adjustments, rules checked)."""
_Close = tuple[Decimal | None, bool, bool]
_Size = tuple[Decimal, bool, bool, float]
"""(rounded, whether rounding changed it, whether every check of the size passes, the float of the rounded)"""
_At = tuple[Decimal, float, float] | None
"""(price, its float, a float of price * margin rate), None: no entry (see FastIntents._at)"""
_ROOM = 1.0 + 1e-12
"""Relative room for a float bound on a Decimal product: a float of a Decimal is within 1.2e-16 of it, a float
product within as much, a 28-digit Decimal product within 1e-27 (checked: ``_bounds_hold``)."""
_UNSEEN = object()
_NAN = float("nan")


def _bounds_hold() -> bool:
    """Whether Decimal products round finely enough (the context's precision) for the float bounds' room."""
    return getcontext().prec >= 28


def request_of(intent: OrderIntent, plain: Plain, now: int) -> OrderRequest:
    """The :class:`OrderRequest` the gate sends for ``intent`` with these fields."""
    cid, side, qty, reduce_only, notes, checked = plain
    return new_market_request(cid, intent.intent_id, intent.strategy_id, intent.symbol, side, _MARKET, qty, None, None,
                              reduce_only, notes, checked, now, now)  # fmt: skip


class _Symbol:
    """What the decision reads per symbol and what cannot change during a run, looked up once."""

    __slots__ = ("cap_f", "cap_left", "cap_open", "closes", "has_min_notional", "last_close", "last_size", "lev",
                 "margin_rate", "margin_rate_f", "max_qty", "min_notional", "min_qty", "notional_f", "prices", "rules",
                 "sizes", "trading")  # fmt: skip

    def __init__(self, rules: SymbolRules, lev: int, cap_notional: Decimal, margin_rate: Decimal) -> None:
        self.rules = rules
        self.lev = lev
        self.margin_rate = margin_rate
        self.cap_left = cap_notional - ZERO  # the cap less the exposure, flat (the general decision's subtraction)
        self.cap_open = self.cap_left > ZERO
        # below it, a float product ``qty * price`` shows the quantity under the bracket's cap ``cap_left / price``
        # (room for the roundings as for the min notional below; NaN: never, the Decimal quotient decides)
        cap_f = float(self.cap_left) / _ROOM
        self.cap_f = cap_f if 1e-280 < cap_f < 1e280 and _bounds_hold() else _NAN
        self.margin_rate_f = float(margin_rate)
        self.max_qty = rules.market_max_qty
        self.min_qty = rules.market_min_qty
        self.min_notional = rules.min_notional
        self.has_min_notional = rules.min_notional > 0
        # the min notional with room (``_ROOM``), NaN where no float bound may stand for it (every test then fails:
        # the Decimal comparison decides): not a finite positive float, or a context that rounds coarsely
        notional_f = float(rules.min_notional) * _ROOM if self.has_min_notional else _NAN
        self.notional_f = notional_f if 1e-280 < notional_f < 1e280 and _bounds_hold() else _NAN
        # (a zero step leaves quantities unrounded: check_market_order must then judge them)
        self.trading = rules.status == "TRADING" and rules.market_step_size > 0
        self.closes: dict[Decimal, _Close] = {}  # position size -> what its close sends (FastIntents._close_of)
        self.sizes: dict[Decimal, _Size] = {}  # an entry's quantity -> its rounding and checks (FastIntents._size_of)
        # the last of each looked up, compared by value first: a position's size is a new Decimal at every close,
        # and hashing one costs more than comparing it (the same entry the dict gives: its keys are values too)
        self.last_size: tuple[Decimal, _Size] | None = None
        self.last_close: tuple[Decimal, _Close] | None = None
        self.prices: dict[float, _At] = {}  # a reference price -> its Decimal and products (FastIntents._at)


class FastIntents:
    """``decide(intent, now)``: the general decision's answer for a plain market entry or close, or None."""

    def __init__(
        self,
        decider: IntentDecider,
        account: AccountView,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        config: RiskConfig,
        states: TradingStates,
    ) -> None:
        self._decider = decider
        self._account = account
        self._rules = rules
        self._brackets = brackets
        self._config = config
        self._states = states
        g = config.guards
        # guards that need more than a count: with any of them configured, entries take the general way
        self._guards_quiet = (g.max_gross_exposure is None and g.max_symbol_exposure is None
                              and g.min_liquidation_distance_pct is None and g.min_liquidation_distance_atr is None)
        self._max_open = g.max_open_positions
        # the count of open positions, where the account keeps it (the portfolio: only open ones, by symbol)
        self._count_open: Callable[[], int] | None = getattr(account, "open_position_count", None)
        self._usable_pct = _HUNDRED - config.margin_buffer_pct
        # a float bound on the available balance, where the account offers one: enough for the margin cap when it
        # is above what the entry's margin needs, with room for the roundings (portfolio.prices.CoverBound.covers)
        self._covers: Callable[[float], bool] | None = (
            getattr(account, "available_covers", None) if self._usable_pct > 0 else None)
        # (and room for the floats of the margin's factors: _entry multiplies them)
        self._cover_scale = 100.0 / float(self._usable_pct) * (1.0 + 1e-9) * _ROOM if self._usable_pct > 0 else 0.0
        if self._covers is not None and not _bounds_hold():
            self._covers = None
        self._qty_f: tuple[object, float] = (None, 0.0)  # the last entry quantity and its float
        self._symbols: dict[str, _Symbol | None] = {}
        self._sizings: dict[str, SizingConfig] = {}  # a strategy's sizing (the config does not change during a run)
        self._prices: dict[float, Decimal] = {}  # a reference price's finite Decimal (_dec), per float
        self.closed = ZERO
        """The account's position the last :meth:`_close` read (the one its exit is sent against)."""

    def _price(self, value: float) -> Decimal | None:
        """``_dec(value)``, remembered: closes repeat, and the conversion costs more than the rest of a step. Only
        finite answers are kept (None, for a value with no finite Decimal, is worked out again), of floats only (the
        table is keyed by value: an int's Decimal has other digits than the equal float's)."""
        if type(value) is not float:
            return _dec(value)
        found = self._prices.get(value)
        if found is None:
            found = _dec(value)
            if found is not None:
                if len(self._prices) >= 1 << 16:
                    self._prices.clear()
                self._prices[value] = found
        return found

    def share_prices(self, table: dict[float, Decimal]) -> None:
        """Keep the reference prices' Decimals in ``table``, shared with another reader that converts the same
        floats the same way (``Decimal(repr(x))``: a float's ``str`` is its ``repr``) and keeps only finite ones:
        the simulated exchange's fill prices (a next open is the signal kline's close in most klines)."""
        self._prices = table

    def _symbol(self, symbol: str) -> _Symbol | None:
        known = self._symbols.get(symbol, False)
        if known is not False:
            return known  # type: ignore[return-value]
        made: _Symbol | None = None
        rules = self._rules.get(symbol)
        brackets = self._brackets.get(symbol)
        if rules is not None and brackets is not None:
            try:
                lev = self._decider.leverage_for(symbol)
            except ConfigError:
                lev = 0
            if lev:
                cap_notional, margin_rate = self._decider._per_leverage(symbol, brackets, lev)
                made = _Symbol(rules, lev, cap_notional, margin_rate)
        self._symbols[symbol] = made
        return made

    def decide(self, intent: OrderIntent, now: int) -> Decided | None:
        plain = self.plain(intent)
        if plain is None:
            action = intent.action
            pair = self.flip(intent, action is _OPEN_LONG) if action is _OPEN_LONG or action is _OPEN_SHORT else None
            return None if pair is None else ([request_of(intent, pair[0], now), request_of(intent, pair[1], now)],
                                              None)
        return [request_of(intent, plain, now)], None

    def plain(self, intent: OrderIntent) -> Plain | None:
        """:meth:`decide`'s answer as the fields of its one MARKET request (the gate may hand them on without the
        request: :mod:`kinetic_empire.backtest.direct`), or None."""
        action = intent.action
        if action is _CLOSE:
            return self._close(intent)
        if action is not _OPEN_LONG and action is not _OPEN_SHORT:
            return None
        return self._entry(intent, action is _OPEN_LONG)

    # ----------------------------------------------------------------------------------- entries
    def _entry_symbol(self, intent: OrderIntent) -> _Symbol | None:
        """The symbol's constants for a plain MARKET entry (no price, stop or target; no guard that needs more than a
        count; nothing holding entries on the symbol), else None: the general way."""
        if intent.limit_price is not None or intent.stop_loss is not None or intent.take_profit is not None \
                or not self._guards_quiet:
            return None
        symbol = intent.symbol
        try:
            s = self._symbols[symbol]
        except KeyError:
            s = self._symbol(symbol)
        if s is None:
            return None
        st = self._states  # (entry_denial's first test, kept by the states: nothing holds entries, the common case)
        if not st.calm and st.entry_denial(symbol) is not None:
            return None
        return s

    def _entry(self, intent: OrderIntent, long: bool) -> Plain | None:
        """:meth:`plain` of an OPEN_LONG (``long``) or OPEN_SHORT intent."""
        s = self._entry_symbol(intent)
        if s is None:
            return None
        symbol = intent.symbol
        ref = intent.reference_price
        found = s.prices.get(ref, _UNSEEN) if ref else _UNSEEN  # (0.0 and -0.0: one key, two Decimals)
        at: _At = self._at(s, ref) if found is _UNSEEN else found  # type: ignore[assignment]
        if at is None:
            return None
        price, price_f, margin_f = at
        account = self._account
        pos = account.position(symbol)
        if pos.quantity != ZERO:  # adding or flipping: the general way
            return None
        cfg = self._sizings.get(intent.strategy_id)
        if cfg is None:
            cfg = self._sizings[intent.strategy_id] = self._config.sizing_for(intent.strategy_id)
        qty = intent.quantity
        if qty is not None:
            if not qty.is_finite() or qty <= ZERO or qty > MAX_QUANTITY:
                return None
        elif cfg.method is _FIXED_QUANTITY:
            qty = cfg.quantity or ZERO
        elif cfg.method is _FIXED_NOTIONAL:
            qty = (cfg.notional or ZERO) / price
        else:  # sized from equity, a stop or an ATR: the general way
            return None
        last_f = self._qty_f  # the quantity's float, remembered by identity (a sizing's quantity is one object)
        if last_f[0] is qty:
            qty_f = last_f[1]
        else:
            qty_f = float(qty)
            self._qty_f = (qty, qty_f)
        covers = self._covers  # (a float bound showing the balance is above what the margin cap needs: skipped)
        if covers is not None:
            # the margin ``qty * price * margin rate`` from the floats of its factors, with 1e-12 more room in the
            # scale for their roundings
            need = qty_f * margin_f
            if not need >= 1e-280:  # (tiny, or not a number: the Decimal product's float)
                need = float(qty * (price * s.margin_rate))
            covered = covers(need * self._cover_scale)
        else:
            covered = False
        if not covered:
            available = account.available_balance()
            usable = available * self._usable_pct / _HUNDRED
            if usable <= ZERO:
                return None
            if qty > usable / (price * s.margin_rate):
                return None
        # the caps in the general order (the bracket's: ``(cap - 0) / price``, certainly not binding below the float
        # bound); any that binds: the general way writes its note
        if not qty_f * price_f <= s.cap_f and qty > s.cap_left / price:
            return None
        last = s.last_size
        if last is not None and (last[0] is qty or last[0] == qty):
            size = last[1]
        else:
            known = s.sizes.get(qty)
            size = self._size_of(s, qty) if known is None else known
            s.last_size = (qty, size)
        rounded, changed, passes, rounded_f = size
        if not passes:  # above the max quantity, rounded to nothing or below the min, or a symbol not trading
            return None
        notes: tuple[str, ...] = ()
        if changed:  # (the note shows the quantity's own digits: made each time, not remembered by value)
            notes = (f"qty rounded {fmt(qty)}→{rounded:f}",)
        # the min notional: certainly met when the floats' product is above it with room for their roundings
        # (``notional_f``: NaN where that cannot be shown), else the Decimal product's comparison
        if s.has_min_notional and not rounded_f * price_f >= s.notional_f and rounded * price < s.min_notional:
            return None
        limit = self._max_open
        if limit is not None:
            count = self._count_open
            if (count() if count is not None else sum(1 for p in account.positions() if p.quantity != ZERO)) >= limit:
                return None
        cid = intent.intent_id + _ENTRY_TAIL  # (ids.client_id's common case, inlined: a valid id as it is)
        if not _VALID(cid):
            cid = ids.client_id(intent.intent_id, ids.ENTRY)
        return cid, _BUY if long else _SELL, rounded, False, notes, True

    def _at(self, s: _Symbol, ref: float) -> _At:
        """What an entry at reference price ``ref`` computes from the price alone: its Decimal (``_dec``), its float
        (``ref`` itself for a float: ``Decimal(repr(x))`` converts back to ``x``) and a float of the margin's product
        ``price * margin rate`` (from the floats of its factors: the bound's room covers their roundings); None where
        the general decision would not let an entry through (no price, not above zero, no room under the cap). Pure
        functions of the price (and the run's constants): remembered per price, non-zero ones only."""
        price = self._price(ref) if ref else _dec(ref)
        made: _At = None
        if price is not None and price > ZERO and s.cap_open:
            price_f = ref if type(ref) is float else float(price)
            made = (price, price_f, price_f * s.margin_rate_f)
        if ref:
            if len(s.prices) >= 1 << 16:
                s.prices.clear()
            s.prices[ref] = made
        return made

    def _size_of(self, s: _Symbol, qty: Decimal) -> _Size:
        """An entry's quantity rounded to the lot step, whether that changed it, and whether the size passes every
        check that reads only it (the max quantity, rounded above zero and to at least the min, a trading symbol):
        functions of its value alone (the rounding quantises to the step), so remembered by value."""
        rounded = self._decider._rounded(s.rules, qty)
        passes = not (qty > s.max_qty) and rounded > ZERO and not (rounded < s.min_qty) and not (rounded > s.max_qty) \
            and s.trading
        made = (rounded, rounded != qty, passes, float(rounded))
        if len(s.sizes) >= 4096:
            s.sizes.clear()
        s.sizes[qty] = made
        return made

    # ------------------------------------------------------------------------------------- flips
    def flip(self, intent: OrderIntent, long: bool) -> tuple[Plain, Plain] | None:
        """The general decision's two requests for a MARKET entry against an open opposite position (a close of it,
        reduce-only, then the entry), or None. The same steps as :meth:`IntentDecider._entry` for that shape, on the
        same Decimal operands: the released margin counted, no cap binding (a note: the general way), the close
        one order that ``check_market_order`` passes, the entry as :meth:`_entry` checks it. Sizing from equity
        (percent of equity) is done here too: a flip's size is worked out each time."""
        s = self._entry_symbol(intent)
        if s is None:
            return None
        symbol = intent.symbol
        ref = intent.reference_price
        price = self._price(ref) if ref else _dec(ref)
        if price is None or not price > ZERO or not s.cap_open:
            return None
        account = self._account
        pos = account.position(symbol)
        existing = pos.quantity
        if existing == ZERO or (existing > ZERO) == long:  # flat or adding: not a flip
            return None
        qty = intent.quantity
        if qty is not None:
            if not qty.is_finite() or qty <= ZERO or qty > MAX_QUANTITY:
                return None
        else:
            cfg = self._sizings.get(intent.strategy_id)
            if cfg is None:
                cfg = self._sizings[intent.strategy_id] = self._config.sizing_for(intent.strategy_id)
            qty = self._sized(cfg, price)
            if qty is None:
                return None
        # the caps in the general order (margin, max quantity, the bracket's notional): any that binds, None
        usable = account.available_balance() * self._usable_pct / _HUNDRED
        usable += abs(existing) * price / max(pos.leverage, 1)  # the close releases the position's margin first
        if usable <= ZERO or qty > usable / (price * s.margin_rate) or qty > s.max_qty or qty > s.cap_left / price:
            return None
        rounded = self._decider._rounded(s.rules, qty)
        if not rounded > ZERO or rounded < s.min_qty or rounded > s.max_qty or not s.trading:
            return None
        if s.has_min_notional and rounded * price < s.min_notional:
            return None
        size = abs(existing)
        found = s.closes.get(size)
        close, checked, _ = self._close_of(s, size) if found is None else found
        if close is None or not checked:  # split, or refused by the rules: the general way
            return None
        cid = intent.intent_id + _CLOSE_TAIL  # (as in _entry)
        if not _VALID(cid):
            cid = ids.client_id(intent.intent_id, ids.CLOSE)
        closing = (cid, _SELL if existing > ZERO else _BUY, close, True,
                   (f"closes the {'short' if long else 'long'} {fmt(size)} before the entry",), True)
        cid = intent.intent_id + _ENTRY_TAIL
        if not _VALID(cid):
            cid = ids.client_id(intent.intent_id, ids.ENTRY)
        notes: tuple[str, ...] = (f"qty rounded {fmt(qty)}→{rounded:f}",) if rounded != qty else ()
        return closing, (cid, _BUY if long else _SELL, rounded, False, notes, True)

    def _sized(self, cfg: SizingConfig, price: Decimal) -> Decimal | None:
        """``sizing.raw_quantity`` for a fixed quantity, a fixed notional or a percent of equity (the same
        expressions), None for the other methods or no equity."""
        method = cfg.method
        if method is _FIXED_QUANTITY:
            return cfg.quantity or ZERO
        if method is _FIXED_NOTIONAL:
            return (cfg.notional or ZERO) / price
        if method is not _PERCENT_EQUITY:
            return None
        equity = self._account.equity()
        if equity <= ZERO:
            return None
        return equity * (cfg.percent or ZERO) / _HUNDRED / price

    # ------------------------------------------------------------------------------------ closes
    def _close(self, intent: OrderIntent) -> Plain | None:
        """:meth:`plain` of a CLOSE intent."""
        symbol = intent.symbol
        try:
            s = self._symbols[symbol]
        except KeyError:
            s = self._symbol(symbol)
        if s is None:
            return None
        ref = intent.reference_price
        price = self._prices.get(ref) if type(ref) is float else None  # (_price's table, read inline)
        if price is None:
            price = self._price(ref) if ref else _dec(ref)
            if price is None:
                return None
        if price <= ZERO:
            return None
        st = self._states  # (effective's first test, kept by the states: no source holds anything, then ACTIVE)
        if not st.calm and st.effective(symbol) is _HALTED:
            return None
        pos = self.closed = self._account.position(symbol).quantity
        if not pos:
            return None
        size = abs(pos)
        last = s.last_close
        if last is not None and last[0] == size:
            known = last[1]
        else:
            found = s.closes.get(size)
            known = self._close_of(s, size) if found is None else found
            s.last_close = (size, known)
        qty, checked, rounded = known
        if qty is None:  # split into several orders: the general way
            return None
        notes: tuple[str, ...] = ()
        if rounded:  # (the note shows the size's own digits: made each time, not remembered by value)
            notes = (f"qty rounded up {fmt(size)}→{qty:f} (reduce-only, trimmed by the exchange)",)
        cid = intent.intent_id + _CLOSE_TAIL  # (as in _entry)
        if not _VALID(cid):
            cid = ids.client_id(intent.intent_id, ids.CLOSE)
        return cid, _SELL if pos > ZERO else _BUY, qty, True, notes, checked

    def _close_of(self, s: _Symbol, size: Decimal) -> _Close:
        """What a close of a position of ``size`` sends: (quantity or None for a split, whether
        ``check_market_order`` passes it, whether it was rounded). Every part depends only on the size's value
        (the rounding quantises to the lot step), so it is remembered by value."""
        rules = s.rules
        qty = max(self._decider._rounded(rules, size, up=True), s.min_qty)
        if s.max_qty > ZERO and qty > s.max_qty:
            made: _Close = (None, False, False)
        else:
            made = (qty, rules.check_market_order(qty, ZERO, True) is None, qty != size)
        if len(s.closes) >= 4096:
            s.closes.clear()
        s.closes[size] = made
        return made


__all__ = ["FastIntents", "Plain", "request_of"]
