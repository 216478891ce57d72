"""Margin and liquidation of the simulated exchange: leverage, the account's margin figures, the
initial-margin check an order must pass, and the forced close when a kline reaches a liquidation price.

Account model: one-way position mode, cross or isolated margin per symbol, USDT as the only margin asset
(reference section 9). The liquidation prices themselves are solved in :mod:`.cross_margin` whenever the wallet
or a position changes, and with several cross positions when a price reaches or leaves its band; an isolated
position's wallet is kept by :mod:`.isolated`.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

from ..core.enums import BalanceReason, MarginType, OrderType, Side, TimeInForce, WorkingType
from ..core.errors import ExchangeError
from ..core.events import Liquidated
from ..core.liquidation import maintenance_margin, tiers
from . import isolated
from .book import ZERO, Book, dec, money
from .cross_margin import Cover, liquidation_of, solve_liquidation_prices
from .ledger import Ledger
from .orders import SimOrder

_ISOLATED = MarginType.ISOLATED  # (an enum member read from its class costs a descriptor call)
_LIMIT = OrderType.LIMIT
#: the largest summed magnitude :meth:`Margin.available_covers` judges (far below where 28 digits quantised to 8
#: places stop being exact); above it, it defers to the exact sum
_COVER_SIZE_LIMIT = 1e15


class Margin(Ledger):
    """Leverage settings, margin queries, the margin check of new orders, and liquidation."""

    # --------------------------------------------------------------------------------- settings
    def set_leverage(self, symbol: str, leverage: int) -> Decimal:
        """Set a symbol's leverage; returns the max position notional it allows (-4028 if invalid)."""
        book = self.book(symbol)
        max_lev = book.brackets.max_leverage() if book.brackets else 125
        if not 1 <= leverage <= max_lev:
            raise ExchangeError(-4028, f"Leverage {leverage} is not valid")
        if book.brackets is not None:
            notional = abs(book.pos.qty) * Decimal(str(book.last or 0))
            cap = book.brackets.max_notional(leverage)
            if notional > cap:
                raise ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
        book.pos.leverage = leverage
        self._update_liquidation_prices()
        return book.brackets.max_notional(leverage) if book.brackets else Decimal("1000000000")

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        """Cross or isolated for one symbol; as on Binance, not while it has open orders or a position."""
        book = self.book(symbol)
        if book.pos.margin_type is margin_type:
            raise ExchangeError(-4046, "No need to change margin type.")
        if any(o.is_open for o in (*book.market, *book.resting)):
            raise ExchangeError(-4047, "Margin type cannot be changed if there exists open orders.")
        if book.pos.qty != 0:
            raise ExchangeError(-4048, "Margin type cannot be changed if there exists position.")
        book.pos.margin_type = margin_type
        book.pos.iso_wallet = ZERO

    def modify_isolated_margin(self, symbol: str, amount: Decimal, *, add: bool) -> Decimal:
        """Binance's POST /fapi/v1/positionMargin: move ``amount`` USDT into (``add``) or out of an isolated
        position's wallet; returns the isolated wallet after. Refused: not isolated or no position (-1130),
        not enough available cross balance (-4050), more than the position can spare (-4051)."""
        book = self.book(symbol)
        pos = book.pos
        if amount <= 0:
            raise ExchangeError(-1130, "Data sent for parameter 'amount' is not valid.")
        if pos.margin_type is not MarginType.ISOLATED or pos.qty == 0:
            raise ExchangeError(-1130, "Margin can only be adjusted on an open isolated position.")
        if add:
            if amount > self.available_balance():
                raise ExchangeError(-4050, "Cross balance insufficient.")
            pos.iso_wallet += amount
        else:
            mark = dec(book.last) if book.last else pos.entry
            if amount > isolated.max_removable(pos, mark):
                raise ExchangeError(-4051, "Isolated balance insufficient.")
            pos.iso_wallet -= amount
        self._update_liquidation_prices()
        return pos.iso_wallet

    def isolated_wallet(self, symbol: str) -> Decimal:
        """The position's isolated wallet (zero under cross margin)."""
        return self.book(symbol).pos.iso_wallet

    def margin_type(self, symbol: str) -> MarginType:
        return self.book(symbol).pos.margin_type

    # --------------------------------------------------------------------------------- queries
    def position(self, symbol: str) -> tuple[Decimal, Decimal, int]:
        """(signed quantity, entry price, leverage)."""
        pos = self.book(symbol).pos
        return pos.qty, pos.entry, pos.leverage

    def last_price_float(self, symbol: str) -> float:
        """The latest price as a float (0.0 before the first); cheap, for account views."""
        book = self._books.get(symbol)
        return book.last if book is not None else 0.0

    def last_price(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        return book.rules.round_price_nearest(dec(book.last)) if book.last else ZERO

    def unrealized_pnl(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        mark = book.mark_price()
        if book.pos.qty == 0 or not mark:
            return ZERO
        return money(book.pos.qty * (dec(mark) - book.pos.entry))

    def position_initial_margin(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        if book.pos.margin_type is MarginType.ISOLATED:
            return book.pos.iso_wallet
        return money(abs(book.pos.qty) * dec(book.mark_price()) / book.pos.leverage)

    def maintenance_margin(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        if book.pos.qty == 0:
            return ZERO
        notional = abs(book.pos.qty) * dec(book.mark_price())
        return money(max(ZERO, maintenance_margin(tiers(book.brackets), notional)))

    def open_order_initial_margin(self, symbol: str | None = None) -> Decimal:
        total = ZERO
        for order in self.open_orders(symbol):
            if (
                order.reduce_only
                or order.close_position
                or order.orig_type
                not in (
                    OrderType.LIMIT,
                    OrderType.MARKET,
                )
            ):
                continue
            book = self._books[order.symbol]
            price = order.price if order.price is not None else dec(book.last or 0)
            total += price * order.remaining / book.pos.leverage
        return money(total)

    def total_unrealized_pnl(self) -> Decimal:
        return sum((self.unrealized_pnl(s) for s in self._books), ZERO)

    def margin_balance(self) -> Decimal:
        return self.wallet + self.total_unrealized_pnl()

    def available_balance(self) -> Decimal:
        """Margin balance minus the initial margin of positions and of orders that add exposure."""
        available = self.wallet
        for b in self._books.values():
            pos = b.pos
            if pos.margin_type is _ISOLATED:  # its wallet is set aside; its PnL stays with it
                available -= pos.iso_wallet
            elif pos.qty_f != 0.0 and b.last:
                mark = dec(b.mark or b.last)
                available += money(pos.qty * (mark - pos.entry)) - money(abs(pos.qty) * mark / pos.leverage)
            for order in b.market or ():
                if order.is_open and not (order.reduce_only or order.close_position):
                    available -= money(dec(b.last or 0) * order.remaining / pos.leverage)
            for order in b.resting or ():
                if order.is_open and order.orig_type is _LIMIT and not order.reduce_only:
                    available -= money(order.price * order.remaining / pos.leverage)  # type: ignore[operator]
        return available

    def available_covers(self, needed: Decimal) -> bool:
        """True when :meth:`available_balance` is certainly at least ``needed`` (``needed > available_balance()``
        is False); False when unsure: then ask it. The margin check of every order asks; this is a pass of float
        products (:meth:`covers_float`), not Decimal quotients, marks and quantisations per symbol."""
        return self.covers_float(float(needed), float(self.wallet))

    def covers_float(self, need: float, wallet: float) -> bool:
        """:meth:`available_covers` of an amount known as the float ``need`` (the exact amount at most ``need``),
        ``wallet`` being ``float(self.wallet)`` (a caller may have it already).

        The estimate sums the same terms in floats: the books' ``qty_f`` and ``entry_f`` (the nearest floats of
        ``qty`` and ``entry``), the float prices the Decimal marks are made of. Each Decimal term is within 5e-9
        of its real value (quantised to 8 places; 28 digits) and each float one within about 1e-15 of its size,
        so 1e-8 a term plus 1e-12 of the summed sizes bounds how far the exact sum can lie below the estimate
        (tests/unit/test_available_covers.py compares both on random accounts). A flat cross book with no order
        adds nothing (four checks); a long at positive prices (the usual open position) adds its size,
        ``qty * (2 * mark + entry)``, without taking magnitudes; at leverage 1 its term is ``-qty * entry``.

        Shorter still while every open position is a cross long at leverage 1 (entry not below 0) that the last
        liquidation solve found covered (:class:`~.cross_margin.Cover`, whose terms are their ``qty_f * entry_f``,
        stamped with the next trade id then: no fill since, so they are the positions now, also while a fill's
        events are being read before its solve) and no book has an order or is isolated: the exact term
        ``money(qty * (mark - entry)) - money(qty * mark)`` is ``-qty * entry`` but for the two quantisations
        (1e-8) and the 28-digit roundings of products below 1e20 (beyond it ``money`` cannot quantise and the exact
        sum raises), at most 5e-9 each: 1e-6 a position allows for them, the cover's ``notional + err`` bounds the
        float sum of the entry notionals, and no mark is read."""
        if getcontext().prec < 28:
            return False
        size = wallet if wallet >= 0.0 else -wallet  # (NaN: caught by the size checks below)
        cover = self._cover
        if cover is not None and cover.terms is not None and cover.trade == self._next_trade_id and cover.unit:
            # every open position is a covered cross long at leverage 1, its qty * entry in the cover's terms
            # (no fill since the solve that left them): the one check of each book is whether it adds any other term
            for b in self._books.values():
                if b.market or b.resting or b.pos.margin_type is _ISOLATED:
                    break
            else:
                top = cover.notional + cover.err  # (at least their float sum)
                if 0.0 <= top < _COVER_SIZE_LIMIT and size < _COVER_SIZE_LIMIT and wallet - top - (
                        1e-6 * len(cover.terms) + 1e-8 + 1e-12 * (size + top)) > need + 1e-12 * abs(need):
                    return True
        est = wallet
        terms = 1
        for b in self._books.values():
            pos = b.pos
            qty = pos.qty_f
            if pos.margin_type is _ISOLATED:
                iso = float(pos.iso_wallet)
                est -= iso
                size += abs(iso)
            elif qty and b.last:  # (qty_f != 0.0)
                mark = b.mark or b.last
                entry = pos.entry_f
                if qty > 0.0 and mark > 0.0 and entry >= 0.0:  # (every factor's sign known: no abs)
                    lev = pos.leverage
                    if lev == 1:  # qty * (mark - entry) - qty * mark is -qty * entry
                        cost = qty * entry
                        est -= cost
                        size += qty * (mark + mark) + cost
                    else:
                        notional = qty * mark
                        est += qty * (mark - entry) - notional / lev
                        size += notional + notional + qty * entry
                else:
                    est += qty * (mark - entry) - abs(qty) * mark / pos.leverage
                    size += abs(qty) * (abs(mark) * 2.0 + abs(entry))
                terms += 2
            if b.market:
                for order in b.market:
                    if order.is_open and not (order.reduce_only or order.close_position):
                        amount = (b.last or 0.0) * float(order.remaining) / pos.leverage
                        est -= amount
                        size += abs(amount)
                        terms += 1
            if b.resting:
                for order in b.resting:
                    if order.is_open and order.orig_type is _LIMIT and not order.reduce_only:
                        amount = float(order.price) * float(order.remaining) / pos.leverage  # type: ignore[arg-type]
                        est -= amount
                        size += abs(amount)
                        terms += 1
        if not size < _COVER_SIZE_LIMIT:  # (also NaN)
            return False
        return est - (1e-8 * terms + (1e-12 + 3e-16 * terms) * size) > need + 1e-12 * abs(need)

    def liquidation_price(self, symbol: str) -> Decimal:
        if self._cross_positions > 1:  # prices may have moved inside their bands since the last solve
            self._update_liquidation_prices()
        liq = liquidation_of(self.book(symbol))
        return dec(liq) if liq > 0 else ZERO

    # ------------------------------------------------------------------------------- internals
    _cover: Cover | None = None

    def _update_liquidation_prices(self, changed: Book | None = None) -> None:
        """Re-solve every open position's liquidation price after the wallet or a position changed; after a fill
        of ``changed`` alone, while every open position is a covered cross long, only its own term
        (:class:`~.cross_margin.Cover`)."""
        cover = self._cover
        if cover is None:
            cover = self._cover = Cover()
        elif changed is not None and self.bounded_liquidation_solves:
            held = cover.after_fill(changed, self.wallet, self._next_trade_id)
            if held is not None:
                self._cross_positions = held
                return
        self._cross_positions = solve_liquidation_prices(
            self._books.values(), self.wallet, banded=self.bounded_liquidation_solves, cover=cover
        )
        cover.trade = self._next_trade_id

    def _band_reached(self) -> None:
        """A kline reaches its book's cross-margin band (exchange.cross_margin): the liquidation prices were
        solved on older prices, so solve them again before the kline is judged. Without the band they were
        solved after the last price update already."""
        if self.bounded_liquidation_solves:
            self._update_liquidation_prices()

    def _liquidate_if_reached(self, book: Book, ts: int, o: float, h: float, low: float) -> None:
        """Liquidate when the range reaches the (exactly solved) liquidation price: there, or at the open when
        it opened beyond. A watch level reached may be only the edge of a cross-margin band."""
        pos = book.pos
        liq = liquidation_of(book)
        if liq > 0.0:
            if pos.qty_f > 0.0 and low <= liq:
                self._liquidate(book, ts, min(o, liq))
            elif pos.qty_f < 0.0 and h >= liq:
                self._liquidate(book, ts, max(o, liq))

    def _follow_price(self, book: Book, price: float) -> None:
        """After a book's price (mark or last) changed: with several cross positions, a price that ended
        outside its band breaks the band's promise, so re-solve (without the band: after every update)."""
        if self._cross_positions > 1 and not book.watch_low < price < book.watch_high:
            self._update_liquidation_prices()

    def _check_margin(self, book: Book, side: Side, qty: Decimal, price: Decimal | None) -> None:
        ref = price if price is not None else dec(book.last) if book.last else None
        if ref is None:
            return  # no price yet: nothing to measure against (only before the first kline)
        pos = book.pos
        signed = qty if side is Side.BUY else -qty
        # only the part that increases exposure needs margin
        after = pos.qty + signed
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            increase = qty
        else:
            increase = max(ZERO, qty - abs(pos.qty))
        if increase == 0:
            return
        if book.brackets is not None:
            cap = book.brackets.max_notional(pos.leverage)
            if abs(after) * ref > cap:
                raise ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
        needed = increase * ref / pos.leverage + increase * ref * self.config.taker_fee
        if not self.available_covers(needed) and needed > self.available_balance():
            raise ExchangeError(-2019, "Margin is insufficient.")

    def _liquidate(self, book: Book, ts: int, at: float) -> None:
        pos = book.pos
        qty = pos.qty
        price = book.rules.round_price_nearest(dec(at))
        order = SimOrder(
            order_id=self._next_order_id,
            client_order_id=f"autoclose-{self._next_order_id}",
            symbol=book.symbol,
            side=Side.SELL if qty > 0 else Side.BUY,
            order_type=OrderType.MARKET,
            quantity=abs(qty),
            price=None,
            trigger_price=None,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            close_position=False,
            working_type=WorkingType.MARK_PRICE,
            is_algo=False,
            time=ts,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        wallet_before = self.wallet
        iso_before = pos.iso_wallet if pos.margin_type is MarginType.ISOLATED else None
        self._fill(book, order, abs(qty), price, False, ts)
        if iso_before is None:
            fee = money(min(abs(qty) * price * book.rules.liquidation_fee, max(ZERO, self.wallet)))
        else:  # the isolated margin is lost: what the close left of it goes to the clearance
            fee = money(max(ZERO, iso_before + self.wallet - wallet_before))
        self.wallet -= fee
        if fee:
            self._income(book.symbol, "INSURANCE_CLEAR", -fee, ts, "liquidation")
            self._update_liquidation_prices()  # the fill's solve came before the fee left the cross wallet
        now = self._clock.now_ms()
        self._emit(
            Liquidated(
                symbol=book.symbol,
                quantity=qty,
                price=price,
                realized_pnl=self.wallet + fee - wallet_before,
                fee=fee,
                ts_event=ts,
                ts_init=now,
            )
        )
        self._emit_balance(-fee, BalanceReason.LIQUIDATION, ts, now)
