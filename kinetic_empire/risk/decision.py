"""The intent decision: one strategy intent becomes exchange-valid order requests, or one Denial.

Decision order for an entry (OPEN_LONG / OPEN_SHORT):
trading state and latches -> symbol and brackets -> prices (limit, stop, take-profit) -> raw size
-> caps (margin incl. fees, max quantity, bracket notional) -> lot rounding -> exchange minimums ->
guards (open positions, gross and symbol exposure, liquidation distance) -> final SymbolRules check.
Reducing and closing intents skip the guards but not the exchange rules.

It reads the account and publishes nothing: the risk manager publishes what it decides, so the
decision can be tested and reasoned about as a function of the intent and the account. Decimal
arithmetic runs only here, only when an intent arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..core.account import AccountView, PositionView
from ..core.enums import IntentAction, MarginType, OrderType, Side, TimeInForce, TradingState
from ..core.errors import ConfigError
from ..core.event_factories import new_market_request
from ..core.events import OrderIntent, OrderRequest
from ..core.rules import LeverageBrackets, SymbolRules
from . import guards, ids
from .atr import AtrBook
from .config import RiskConfig, SizingMethod
from .guards import MAX_QUANTITY, Denial, deny, fmt
from .liquidation import isolated_liquidation_price, isolated_wallet_after, liquidation_price, other_positions_terms
from .protection import PendingEntry
from .sizing import finish, raw_quantity
from .state import TradingStates

ZERO = Decimal(0)
_HUNDRED = Decimal(100)
def _bad_quantity(q: Decimal) -> bool:
    """Not a positive finite quantity the exchange could ever take (huge values would overflow the grid)."""
    return not q.is_finite() or q <= 0 or q > MAX_QUANTITY

Decision = tuple[list[OrderRequest], PendingEntry | None]
"""The requests to publish in order, and the entry whose fill must place protective orders."""


class IntentDecider:
    """Sizing, leverage, exchange rules and entry guards for one intent at a time."""

    def __init__(
        self,
        account: AccountView,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        config: RiskConfig,
        states: TradingStates,
        atr: AtrBook | None,
        *,
        fee_taker: Decimal,
    ) -> None:
        self._account = account
        self._rules = rules
        self._brackets = brackets
        self.config = config
        self._states = states
        self._atr = atr
        self.fee_taker = fee_taker
        self._leverage: dict[str, int] = {}
        self._usable_pct = _HUNDRED - config.margin_buffer_pct  # the share of the available balance used, percent
        self._levels: dict[tuple[str, int], tuple[LeverageBrackets, Decimal, Decimal]] = {}  # see _per_leverage
        self._rounding: dict[str, tuple[SymbolRules, dict[tuple[bool, Decimal], Decimal]]] = {}  # see _rounded

    def leverage_for(self, symbol: str) -> int:
        """The configured leverage for ``symbol``, checked against its brackets (ConfigError if not)."""
        lev = self._leverage.get(symbol)
        if lev is None:
            if symbol not in self._rules:
                raise ConfigError(self.config.leverage_path(symbol), f"unknown symbol {symbol}: not in exchangeInfo")
            lev = self._leverage[symbol] = self.config.check_leverage(symbol, self._brackets)
        return lev

    def atr(self, symbol: str, timeframe: str, period: int = 14) -> float | None:
        """The tracked ATR, or None when not tracked or still warming up."""
        return None if self._atr is None else self._atr.get(symbol, timeframe, period)

    def _per_leverage(self, symbol: str, brackets: LeverageBrackets, lev: int) -> tuple[Decimal, Decimal]:
        """(the brackets' max notional at ``lev``, ``1/lev + taker fee``): computed once, the same Decimals
        every entry would compute (brackets and fees do not change during a run)."""
        key = (symbol, lev)
        found = self._levels.get(key)
        if found is None or found[0] is not brackets:  # (new brackets for the symbol: computed again)
            found = self._levels[key] = (brackets, brackets.max_notional(lev), Decimal(1) / lev + self.fee_taker)
        return found[1], found[2]

    def decide(self, intent: OrderIntent, now: int, exit_cap: Decimal | None = None) -> Denial | Decision:
        """The intent's order requests (and the entry awaiting protection, if any), or one Denial.

        ``exit_cap``: an exit takes off at most this much (what the exits in flight leave, :mod:`.exits`)."""
        symbol = intent.symbol
        rules = self._rules.get(symbol)
        if rules is None:
            return deny("UNKNOWN_SYMBOL", symbol=symbol)
        price = _dec(intent.reference_price)
        if price is None or price <= 0:
            return deny("BAD_PRICE", symbol=symbol, reference_price=intent.reference_price)
        action = intent.action
        if action is IntentAction.CLOSE or action is IntentAction.REDUCE:
            if self._states.effective(symbol) is TradingState.HALTED:
                return deny("TRADING_HALTED", symbol=symbol)
            return self._exit(intent, rules, price, now, exit_cap)
        return self._entry(intent, rules, price, now)

    # ------------------------------------------------------------------------------------ exits
    def _exit(
        self, intent: OrderIntent, rules: SymbolRules, price: Decimal, now: int, cap: Decimal | None = None
    ) -> Denial | tuple[list[OrderRequest], None]:
        symbol = intent.symbol
        pos = self._account.position(symbol).quantity
        if not pos:
            return deny("NO_POSITION", symbol=symbol, action=intent.action.value)
        size = abs(pos)
        notes: list[str] = []
        if cap is not None and cap < size:
            notes.append(f"sized net of {fmt(size - cap)} in flight: {fmt(cap)} of {fmt(size)} left")
            size = cap
        suffix = ids.CLOSE
        if intent.action is IntentAction.REDUCE:
            suffix = ids.REDUCE
            if intent.quantity is not None:
                wanted = intent.quantity
                if _bad_quantity(wanted):
                    return deny("BAD_QUANTITY", symbol=symbol, quantity=wanted)
            elif intent.fraction is not None:
                if not 0 < intent.fraction <= 1:
                    return deny("BAD_FRACTION", symbol=symbol, fraction=intent.fraction)
                wanted = size * _dec(intent.fraction)  # type: ignore[operator]
            else:
                return deny("BAD_INTENT", symbol=symbol, reason="REDUCE needs quantity or fraction")
            if wanted >= size:
                notes.append(f"reduce {fmt(wanted)} covers the whole position {fmt(size)}: closing")
                wanted = ZERO
            else:
                qty = rules.round_qty(wanted, market=True)
                if qty != wanted:
                    notes.append(f"qty rounded {fmt(wanted)}→{qty:f}")
                if qty <= 0:
                    return deny("QTY_ROUNDS_TO_ZERO", symbol=symbol, qty=wanted, step=rules.market_step_size)
                if qty < rules.market_min_qty:
                    return deny("QTY_BELOW_MIN", symbol=symbol, qty=qty, min=rules.market_min_qty)
                return self._reduce_only(intent, rules, pos, qty, suffix, notes, now), None
        # a reduce-only order larger than the position is trimmed by the exchange: round up, close all
        qty = max(self._rounded(rules, size, up=True), rules.market_min_qty)
        if qty != size:
            notes.append(f"qty rounded up {fmt(size)}→{qty:f} (reduce-only, trimmed by the exchange)")
        return self._reduce_only(intent, rules, pos, qty, suffix, notes, now), None

    def _reduce_only(
        self,
        intent: OrderIntent,
        rules: SymbolRules,
        pos: Decimal,
        qty: Decimal,
        suffix: str,
        notes: list[str],
        now: int,
        checked: bool = False,
    ) -> list[OrderRequest]:
        """Reduce-only MARKET order(s) against the position ``pos``, split at the market max quantity.

        ``checked``: the caller runs ``check_order`` on them before publishing (stamps them as checked)."""
        side = Side.SELL if pos > 0 else Side.BUY
        max_qty = rules.market_max_qty
        if max_qty <= 0 or qty <= max_qty:  # one order (_split's first case, without the list work)
            chunks = [qty]
        else:
            chunks = _split(qty, max_qty, rules.market_min_qty)
            if len(chunks) > 1:
                notes.append(f"split into {len(chunks)} orders at the market max qty {fmt(rules.market_max_qty)}")
        adjustments = tuple(notes)
        # not checked by the caller: check here and stamp what passes (a reduce-only order's filters do not
        # involve the mark, so the exchange's check gives the same answer); what fails goes unstamped, and the
        # exchange refuses it as before
        return [
            new_market_request(ids.client_id(intent.intent_id, suffix, i), intent.intent_id, intent.strategy_id,
                               intent.symbol, side, OrderType.MARKET, chunk, None, None, True, adjustments,
                               checked or rules.check_market_order(chunk, ZERO, True) is None, now, now)
            for i, chunk in enumerate(chunks)
        ]  # fmt: skip

    def _rounded(self, rules: SymbolRules, qty: Decimal, *, up: bool = False) -> Decimal:
        """``rules.round_qty(qty, market=True)`` (``round_qty_up`` with ``up``), remembered: the result depends
        only on the value (always quantised to the step), and fixed sizes round the same values every time."""
        seen = self._rounding.get(rules.symbol)
        if seen is None or seen[0] is not rules or len(seen[1]) >= 4096:  # new rules for the symbol: start again
            seen = self._rounding[rules.symbol] = (rules, {})
        found = seen[1].get((up, qty))
        if found is None:
            found = seen[1][(up, qty)] = rules.round_qty_up(qty, market=True) if up else rules.round_qty(qty, True)
        return found

    # ----------------------------------------------------------------------------------- entries
    def _entry(self, intent: OrderIntent, rules: SymbolRules, price: Decimal, now: int) -> Denial | Decision:
        symbol = intent.symbol
        denial = self._states.entry_denial(symbol)
        if denial is not None:
            return denial
        long = intent.action is IntentAction.OPEN_LONG
        side = Side.BUY if long else Side.SELL
        brackets = self._brackets.get(symbol)
        if brackets is None:
            return deny("NO_LEVERAGE_BRACKETS", symbol=symbol)
        try:
            lev = self.leverage_for(symbol)
        except ConfigError as exc:
            return deny("LEVERAGE_INVALID", symbol=symbol, reason=str(exc).replace(" ", "_"))
        notes: list[str] = []

        # prices: the limit rounds passively, stop and take-profit on the safe side of the grid
        market = intent.limit_price is None
        entry_price = price
        if not market:
            asked = _dec(intent.limit_price)
            if asked is None or asked <= 0:
                return deny("BAD_PRICE", symbol=symbol, limit_price=intent.limit_price)
            entry_price = rules.round_price(asked, side)
            if entry_price != asked:
                notes.append(f"limit price rounded {fmt(asked)}→{entry_price:f}")
            if entry_price <= 0:
                return deny("BAD_PRICE", symbol=symbol, limit_price=intent.limit_price, tick=rules.tick_size)
        stop_raw, stop = None, None
        if intent.stop_loss is not None:
            checked = self._trigger(rules, symbol, intent.stop_loss, entry_price, long, loss=True)
            if isinstance(checked, Denial):
                return checked
            stop_raw, stop = checked
        take_profit = None
        if intent.take_profit is not None:
            checked = self._trigger(rules, symbol, intent.take_profit, entry_price, long, loss=False)
            if isinstance(checked, Denial):
                return checked
            take_profit = checked[1]

        # size
        account = self._account
        pos = account.position(symbol)
        existing = pos.quantity
        flipping = existing != 0 and (existing > 0) != long
        adding = existing != 0 and not flipping
        equity = account.equity()
        cfg = self.config.sizing_for(intent.strategy_id)
        if intent.quantity is not None:
            if _bad_quantity(intent.quantity):
                return deny("BAD_QUANTITY", symbol=symbol, quantity=intent.quantity)
            qty: Decimal | Denial = intent.quantity
        else:
            atr = None
            if cfg.method is SizingMethod.VOLATILITY_TARGET and cfg.timeframe is not None:
                atr = self.atr(symbol, cfg.timeframe, cfg.atr_period)
            qty = raw_quantity(
                cfg,
                symbol=symbol,
                price=entry_price,
                equity=equity,
                stop=stop_raw,
                atr=atr,
                fee_taker=self.fee_taker,
            )
        if isinstance(qty, Denial):
            return qty

        # caps: margin (fees included), the exchange's max quantity, the bracket's notional for `lev`
        available = account.available_balance()
        usable = available * self._usable_pct / _HUNDRED
        if flipping:  # the close releases the opposite position's margin first
            usable += abs(existing) * price / max(pos.leverage, 1)
        if usable <= 0:
            return deny("INSUFFICIENT_MARGIN", symbol=symbol, available=available)
        cap_notional, margin_rate = self._per_leverage(symbol, brackets, lev)
        held = abs(existing) * price if adding else ZERO
        if cap_notional - held <= 0:
            return deny("BRACKET_CAP_REACHED", symbol=symbol, leverage=lev, notional=held, cap=cap_notional)
        caps = (  # plain (label, limit, values) tuples: a note is written only for a cap that binds
            ("margin", usable / (entry_price * margin_rate), ()),  # = sizing.margin_limit
            ("max qty", rules.market_max_qty if market else rules.max_qty, ()),
            ("bracket notional {} at {}x", (cap_notional - held) / entry_price, (cap_notional, lev)),
        )
        sized = finish(qty, rules=rules, price=entry_price, market=market, caps=caps, adjustments=notes,
                       rounding=(lambda q: self._rounded(rules, q)) if market else None)
        if isinstance(sized, Denial):
            return sized
        qty = sized.quantity

        # guards
        denial = self._entry_guards(symbol, pos, long, qty, entry_price, price, equity, flipping, adding)
        if denial is not None:
            return denial

        requests: list[OrderRequest] = []
        if flipping:
            close = max(rules.round_qty_up(abs(existing), market=True), rules.market_min_qty)
            close_notes = [f"closes the {'short' if long else 'long'} {fmt(abs(existing))} before the entry"]
            requests += self._reduce_only(intent, rules, existing, close, ids.CLOSE, close_notes, now, checked=True)
        # stamped as checked: every request is checked just below, and none leaves if one fails
        requests.append(new_market_request(
            ids.client_id(intent.intent_id, ids.ENTRY), intent.intent_id, intent.strategy_id, symbol, side,
            OrderType.MARKET if market else OrderType.LIMIT, qty, None if market else entry_price,
            None if market else TimeInForce.GTC, False, sized.adjustments, True, now, now,
        ))  # fmt: skip
        for request in requests:  # last line of defence: exactly the exchange's filters
            if request.order_type is OrderType.MARKET:
                bad = rules.check_market_order(request.quantity, price, request.reduce_only)  # type: ignore[arg-type]
            else:
                bad = rules.check_order(
                    side=request.side,
                    order_type=request.order_type,
                    quantity=request.quantity,
                    price=request.price,
                    trigger_price=request.trigger_price,
                    mark_price=price,
                    reduce_only=request.reduce_only,
                )
            if bad is not None:
                return deny(
                    bad.code,
                    symbol=symbol,
                    qty=request.quantity,
                    price=request.price or price,
                    binance_code=bad.binance_code,
                )
        pending = None
        if stop is not None or take_profit is not None:
            pending = PendingEntry(intent.intent_id, intent.strategy_id, symbol, side, stop, take_profit)
        return requests, pending

    def _trigger(
        self, rules: SymbolRules, symbol: str, raw: float, entry: Decimal, long: bool, loss: bool
    ) -> Denial | tuple[Decimal, Decimal]:
        """(asked, rounded) trigger price, denied if on the wrong side of the entry or off the filters."""
        what = "STOP" if loss else "TAKE_PROFIT"
        asked = _dec(raw)
        if asked is None or asked <= 0:
            return deny(f"BAD_{what}", symbol=symbol, price=raw)
        below = long == loss  # a long's stop and a short's take-profit sit below the entry
        if (asked >= entry) if below else (asked <= entry):
            return deny(
                f"{what}_WRONG_SIDE", symbol=symbol, entry=entry, trigger=asked, side="LONG" if long else "SHORT"
            )
        close = Side.SELL if long else Side.BUY
        rounded = rules.round_price(asked, close)
        if (rounded >= entry) if below else (rounded <= entry):
            return deny(f"{what}_TOO_CLOSE", symbol=symbol, entry=entry, trigger=asked, rounded=rounded)
        bad = rules.check_price(rounded)
        if bad is not None:
            return deny(bad.code, symbol=symbol, trigger=rounded, binance_code=bad.binance_code)
        return asked, rounded

    def _entry_guards(
        self,
        symbol: str,
        pos: PositionView,
        long: bool,
        qty: Decimal,
        entry_price: Decimal,
        price: Decimal,
        equity: Decimal,
        flipping: bool,
        adding: bool,
    ) -> Denial | None:
        g = self.config.guards
        account = self._account
        sign = 1 if long else -1
        after = pos.quantity + sign * qty if adding else sign * qty
        notional_after = abs(after) * price
        if g.max_open_positions is not None:
            positions = account.positions()
            count = sum(1 for p in positions if p.quantity != 0)
            denial = guards.max_open_positions(symbol, count, pos.quantity == 0, g.max_open_positions)
            if denial:
                return denial
        if g.max_gross_exposure is not None:
            gross = notional_after
            for p in account.positions():
                if p.symbol != symbol and p.quantity != 0:
                    last = account.last_price(p.symbol)
                    gross += abs(p.quantity) * (_dec(last) if last > 0 else p.entry_price)  # type: ignore[operator]
            denial = guards.max_gross_exposure(symbol, gross, equity, g.max_gross_exposure)
            if denial:
                return denial
        denial = guards.max_symbol_exposure(symbol, notional_after, equity, g.max_symbol_exposure)
        if denial:
            return denial
        atr_cfg = g.min_liquidation_distance_atr
        if g.min_liquidation_distance_pct is None and atr_cfg is None:
            return None
        # the position this entry leaves behind; isolated: its own wallet backs it, cross: the account's wallet
        # after the entry fee (and a flip's PnL), less the other positions' maintenance, plus their PnL
        avg = (abs(pos.quantity) * pos.entry_price + qty * entry_price) / abs(after) if adding else entry_price
        if self.config.margin_type_for(symbol) is MarginType.ISOLATED:
            lp = isolated_liquidation_price(
                quantity=after,
                entry_price=avg,
                isolated_wallet=isolated_wallet_after(pos, sign * qty, entry_price, self.leverage_for(symbol)),
                brackets=self._brackets[symbol],
            )
        else:
            wallet = account.wallet_balance() - qty * entry_price * self.fee_taker
            if flipping:
                wallet += pos.quantity * (price - pos.entry_price) - abs(pos.quantity) * price * self.fee_taker
            others = other_positions_terms(account.positions(), symbol, self._brackets, account.last_price)
            lp = liquidation_price(
                quantity=after,
                entry_price=avg,
                wallet_balance=wallet,
                brackets=self._brackets[symbol],
                other_maintenance=others[0],
                other_upnl=others[1],
            )
        denial = guards.liquidation_distance_pct(symbol, entry_price, lp, long, g.min_liquidation_distance_pct)
        if denial or atr_cfg is None:
            return denial
        atr = self.atr(symbol, atr_cfg.timeframe, atr_cfg.period)
        return guards.liquidation_distance_atr(symbol, entry_price, lp, long, atr, atr_cfg.multiple)


def _dec(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return None
    return d if d.is_finite() else None


def _split(qty: Decimal, max_qty: Decimal, min_qty: Decimal) -> list[Decimal]:
    """Chunks of at most ``max_qty``; a remainder below ``min_qty`` is raised to it (reduce-only trims)."""
    if max_qty <= 0 or qty <= max_qty:
        return [qty]
    chunks = []
    left = qty
    while left > max_qty:
        chunks.append(max_qty)
        left -= max_qty
    if left > 0:
        chunks.append(max(left, min_qty))
    return chunks
