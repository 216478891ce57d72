"""Decisions for intents that adjust an open position: a moved (or trailing) stop, a moved take-profit, and a
target position. Pure functions of the intent and the account, like :mod:`.decision`: they publish nothing.

A moved stop is a reduce-only STOP_MARKET (TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET) for the whole position,
not a ``closePosition`` order: Binance allows one ``closePosition`` stop per direction (-4130 "An open stop or
take profit order with GTE and closePosition in the direction is existing"), so the new stop could not be placed
before the old one is cancelled, and the position would be naked in between. The quantity is the position rounded
up to the market step (a reduce-only order larger than the position is trimmed by the exchange). A trailing
stop needs a quantity on Binance anyway.

A target position becomes the :class:`OrderIntent` that reaches it, decided by the ordinary intent decision: a
smaller position of the same sign is a REDUCE (reduce-only), a larger one an entry that adds (sized, capped and
guarded like any entry), the other sign a flip (a reduce-only close, then the entry: one-way mode has one position
per symbol), zero a CLOSE.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from ..core.enums import IntentAction, OrderType, Side, TradingState, WorkingType
from ..core.events import OrderIntent, OrderRequest, ProtectionIntent, TargetPositionIntent
from ..core.rules import SymbolRules
from . import ids
from .guards import MAX_QUANTITY, Denial, deny, fmt

ZERO = Decimal(0)
STOP, TAKE_PROFIT = "stop", "take_profit"
TRAIL = "ts"  # client id suffix of a trailing stop
CALLBACK_MIN, CALLBACK_MAX, CALLBACK_STEP = Decimal("0.1"), Decimal("10"), Decimal("0.1")


def _dec(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(repr(float(value)))
    except (ArithmeticError, TypeError, ValueError):
        return None
    return d if d.is_finite() else None


def decide_move(
    intent: ProtectionIntent,
    *,
    rules: SymbolRules | None,
    position: Decimal,
    state: TradingState,
    owner_intent: str | None,
    now: int,
) -> Denial | OrderRequest:
    """The order that becomes the position's new stop or take-profit, or why not.

    ``owner_intent``: the intent of the entry whose protection this replaces; the request carries it, so the
    protection guard keeps the moved order as the one the position wants.
    """
    symbol = intent.symbol
    if rules is None:
        return deny("UNKNOWN_SYMBOL", symbol=symbol)
    if state is TradingState.HALTED:
        return deny("TRADING_HALTED", symbol=symbol)
    if intent.kind not in (STOP, TAKE_PROFIT):
        return deny("BAD_INTENT", symbol=symbol, kind=intent.kind)
    if position == 0:
        return deny("NO_POSITION", symbol=symbol, action=f"set_{intent.kind}")
    last = _dec(intent.reference_price)
    if last is None or last <= 0:
        return deny("BAD_PRICE", symbol=symbol, reference_price=intent.reference_price)
    long = position > 0
    close = Side.SELL if long else Side.BUY
    notes: list[str] = []
    qty = max(rules.round_qty_up(abs(position), market=True), rules.market_min_qty)
    if qty > rules.market_max_qty:
        return deny("QTY_ABOVE_MAX", symbol=symbol, qty=abs(position), max=rules.market_max_qty)
    if qty != abs(position):
        notes.append(f"qty rounded up {fmt(abs(position))}→{qty:f} (reduce-only, trimmed by the exchange)")
    trigger: Decimal | None = None
    callback: Decimal | None = None
    activation: Decimal | None = None
    if intent.trail_pct is not None:
        if intent.kind != STOP or intent.price is not None:
            return deny("BAD_INTENT", symbol=symbol, reason="trail_pct_is_for_a_stop_without_price")
        asked = _dec(intent.trail_pct)
        if asked is None:
            return deny("BAD_CALLBACK_RATE", symbol=symbol, trail_pct=intent.trail_pct)
        callback = (asked / CALLBACK_STEP).to_integral_value(rounding=ROUND_HALF_EVEN) * CALLBACK_STEP
        if not CALLBACK_MIN <= callback <= CALLBACK_MAX:
            return deny("BAD_CALLBACK_RATE", symbol=symbol, trail_pct=intent.trail_pct, min=CALLBACK_MIN,
                        max=CALLBACK_MAX)
        if callback != asked:
            notes.append(f"callback rate rounded {fmt(asked)}→{callback:f} (steps of 0.1 %)")
        if intent.activation_price is not None:
            act = _dec(intent.activation_price)
            if act is None or act <= 0:
                return deny("BAD_PRICE", symbol=symbol, activation_price=intent.activation_price)
            # armed when the price reaches it: above the price for a long's stop, below for a short's
            activation = rules.round_price(act, Side.BUY if long else Side.SELL)
            if (activation <= last) if long else (activation >= last):
                return deny("ACTIVATION_WRONG_SIDE", symbol=symbol, activation=activation, price=last,
                            side="LONG" if long else "SHORT")
        order_type = OrderType.TRAILING_STOP_MARKET
        suffix = TRAIL
    else:
        asked = _dec(intent.price)
        if asked is None or asked <= 0:
            return deny(f"BAD_{intent.kind.upper()}", symbol=symbol, price=intent.price)
        trigger = rules.round_price(asked, close)  # the safe side of the grid, as at entry
        if trigger != asked:
            notes.append(f"trigger rounded {fmt(asked)}→{trigger:f}")
        below = long == (intent.kind == STOP)  # a long's stop and a short's take-profit sit below the price
        if (trigger >= last) if below else (trigger <= last):
            what = "STOP" if intent.kind == STOP else "TAKE_PROFIT"
            return deny(f"{what}_WRONG_SIDE", symbol=symbol, price=last, trigger=trigger,
                        side="LONG" if long else "SHORT")
        order_type = OrderType.STOP_MARKET if intent.kind == STOP else OrderType.TAKE_PROFIT_MARKET
        suffix = ids.STOP if intent.kind == STOP else ids.TAKE_PROFIT
    bad = rules.check_order(side=close, order_type=order_type, quantity=qty, price=None,
                            trigger_price=trigger if trigger is not None else activation, mark_price=last,
                            reduce_only=True)
    if bad is not None:
        return deny(bad.code, symbol=symbol, qty=qty, trigger=trigger, binance_code=bad.binance_code)
    return OrderRequest(
        client_order_id=ids.client_id(intent.intent_id, suffix), intent_id=owner_intent or intent.intent_id,
        strategy_id=intent.strategy_id, symbol=symbol, side=close, order_type=order_type, quantity=qty,
        trigger_price=trigger, reduce_only=True, working_type=WorkingType.CONTRACT_PRICE, callback_rate=callback,
        activation_price=activation, adjustments=tuple(notes), ts_event=now, ts_init=now,
    )


def target_intent(
    t: TargetPositionIntent, *, rules: SymbolRules | None, position: Decimal
) -> Denial | OrderIntent | None:
    """The intent that takes ``position`` to ``t``'s target, None when it is already there (to the market
    step), or why not."""
    symbol = t.symbol
    if rules is None:
        return deny("UNKNOWN_SYMBOL", symbol=symbol)
    price = _dec(t.reference_price)
    if price is None or price <= 0:
        return deny("BAD_PRICE", symbol=symbol, reference_price=t.reference_price)
    if t.quantity is not None:
        target = t.quantity
        if not target.is_finite() or abs(target) > MAX_QUANTITY:
            return deny("BAD_QUANTITY", symbol=symbol, quantity=target)
    else:
        notional = _dec(t.notional)
        if notional is None:
            return deny("BAD_NOTIONAL", symbol=symbol, notional=t.notional)
        target = notional / price
    step = rules.market_step_size
    if step > 0:  # towards zero: a target never asks for more than it says
        target = (target / step).to_integral_value(rounding="ROUND_DOWN") * step
    delta = target - position
    common = {"intent_id": t.intent_id, "strategy_id": t.strategy_id, "symbol": symbol, "reference_price":
              t.reference_price, "tag": t.tag, "ts_event": t.ts_event, "ts_init": t.ts_init}
    if delta == 0:
        return None
    if target == 0:
        return OrderIntent(action=IntentAction.CLOSE, **common)  # type: ignore[arg-type]
    same_side = position != 0 and (position > 0) == (target > 0)
    if same_side and abs(target) < abs(position):
        return OrderIntent(action=IntentAction.REDUCE, quantity=abs(delta), **common)  # type: ignore[arg-type]
    action = IntentAction.OPEN_LONG if target > 0 else IntentAction.OPEN_SHORT
    # adding: the difference; from flat or a flip: the whole target (the decision closes the other side first)
    qty = abs(delta) if same_side else abs(target)
    return OrderIntent(action=action, quantity=qty, **common)  # type: ignore[arg-type]


__all__ = ["STOP", "TAKE_PROFIT", "decide_move", "target_intent"]
