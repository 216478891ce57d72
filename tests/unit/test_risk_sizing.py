"""Each sizing method with hand-computed numbers, the caps, and the exchange-minimum boundaries.

FILUSDT (2025-12-24 snapshot): tick 0.001, step 0.1, min qty 0.1, min notional 5, 75x first bracket.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.core.enums import OrderType, Side, TimeInForce
from kinetic_empire.core.events import KlineClosed
from kinetic_empire.risk import WilderAtr
from kinetic_empire.risk.config import SizingConfig, SizingMethod
from kinetic_empire.risk.sizing import raw_quantity
from tests.support.risk_fakes import TAKER, FakeAccount, Harness, all_brackets, all_rules, only_denial, only_request

FIL = "FILUSDT"


def sized(sizing: dict, price: float = 2.0, *, account: FakeAccount | None = None, **kw) -> list:
    h = Harness({"sizing": sizing, "guards": {"max_open_positions": None}}, account=account)
    return h.intent("OPEN_LONG", FIL, price, **kw)


# -------------------------------------------------------------------------------------- methods


def test_fixed_quantity_rounds_down_to_step() -> None:
    req = only_request(sized({"method": "fixed_quantity", "quantity": 12.37}))
    assert req.quantity == D("12.3")
    assert req.adjustments == ("qty rounded 12.37→12.3",)
    assert (req.side, req.order_type, req.price, req.reduce_only) == (Side.BUY, OrderType.MARKET, None, False)


def test_fixed_notional() -> None:
    req = only_request(sized({"method": "fixed_notional", "notional": 200}, 3.333))
    assert req.quantity == D("60.0")  # 200 / 3.333 = 60.006
    assert req.adjustments == ("qty rounded 60.0060006→60.0",)


def test_percent_equity_is_notional_share_of_equity() -> None:
    req = only_request(sized({"method": "percent_equity", "percent": 10}, 2.0, account=FakeAccount(D(10_000))))
    assert req.quantity == D("500.0") and req.adjustments == ()


def test_risk_per_trade_includes_fees_on_entry_and_stop() -> None:
    # budget 1 % of 10,000 = 100; per unit 5 + 0.0005 * (100 + 95) = 5.0975 -> 19.617... -> 19.6
    req = only_request(sized({"method": "risk_per_trade", "percent": 1}, 100.0, stop_loss=95.0))
    assert req.quantity == D("19.6")
    loss = req.quantity * (D(5) + TAKER * D(195))
    assert D(99) < loss <= D(100)


def test_risk_per_trade_short() -> None:
    h = Harness({"sizing": {"method": "risk_per_trade", "percent": 1}})
    req = only_request(h.intent("OPEN_SHORT", FIL, 100.0, stop_loss=105.0))
    assert req.side is Side.SELL and req.quantity == D("19.5")  # 100 / (5 + 0.0005 * 205) = 19.598


def test_risk_per_trade_requires_a_stop() -> None:
    d = only_denial(sized({"method": "risk_per_trade", "percent": 1}, 100.0))
    assert d.code == "STOP_REQUIRED"


def test_explicit_intent_quantity_wins_over_the_method() -> None:
    req = only_request(sized({"method": "risk_per_trade", "percent": 1}, 2.0, quantity=D("7.77")))
    assert req.quantity == D("7.7")


def test_per_strategy_sizing() -> None:
    h = Harness({"strategies": {"tiny": {"sizing": {"method": "fixed_notional", "notional": 20}}}})
    assert only_request(h.intent("OPEN_LONG", FIL, 2.0, strategy_id="tiny")).quantity == D("10.0")
    assert only_request(h.intent("OPEN_LONG", FIL, 2.0, strategy_id="other")).quantity == D("500.0")


# ---------------------------------------------------------------------------------- volatility / ATR


def test_wilder_atr_matches_hand_computation() -> None:
    atr = WilderAtr(3)
    bars = [(10, 8, 9), (11, 9, 10), (12, 9.5, 11), (11.5, 10, 10.5), (13, 10.5, 12)]
    for b in bars:
        atr.update(*b)
    # TRs: 2, 2, 2.5, 1.5, 2.5 ; seed = mean(2, 2, 2.5); then Wilder
    seed = (2 + 2 + 2.5) / 3
    step = (seed * 2 + 1.5) / 3
    assert atr.ready and atr.value == pytest.approx((step * 2 + 2.5) / 3)


def kline(symbol: str, tf: str, high: float, low: float, close: float, t: int = 0) -> KlineClosed:
    return KlineClosed(
        symbol=symbol,
        timeframe=tf,
        open_time=t,
        open=close,
        high=high,
        low=low,
        close=close,
        volume=1.0,
        ts_event=t,
        ts_init=t,
    )


def risk_kline_handlers(h: Harness) -> list[object]:
    """KlineClosed handlers bound to an object of the risk package (the manager or one of its parts)."""
    return [
        f
        for f in h.bus.handlers(KlineClosed)
        if type(getattr(f, "__self__", None)).__module__.startswith("kinetic_empire.risk")
    ]


def test_volatility_target_uses_the_tracked_atr() -> None:
    cfg = {"method": "volatility_target", "percent": 1, "timeframe": "1h", "atr_period": 3, "atr_multiple": 2}
    h = Harness({"sizing": cfg})
    # subscribed because the config needs an ATR
    assert len(risk_kline_handlers(h)) == 1
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "ATR_NOT_READY"
    for _ in range(3):
        h.publish(kline(FIL, "1h", 2.5, 2.0, 2.25))
        h.publish(kline(FIL, "4h", 9.0, 1.0, 2.0))  # other timeframe: ignored
    assert h.rm.atr(FIL, "1h", 3) == 0.5
    # 1 % of 10,000 = 100 per 2 ATR (1.0) -> 100
    assert only_request(h.intent("OPEN_LONG", FIL, 2.0)).quantity == D("100.0")


def test_no_kline_subscription_without_an_atr_rule() -> None:
    h = Harness({"sizing": {"method": "risk_per_trade", "percent": 1}})
    assert risk_kline_handlers(h) == []


def test_raw_quantity_zero_atr_and_no_equity() -> None:
    cfg = SizingConfig(SizingMethod.VOLATILITY_TARGET, percent=D(1), timeframe="1h")
    kw = {"symbol": FIL, "price": D(2), "stop": None, "fee_taker": TAKER}
    assert raw_quantity(cfg, equity=D(100), atr=0.0, **kw).code == "ATR_ZERO"
    assert raw_quantity(cfg, equity=D(0), atr=1.0, **kw).code == "NO_EQUITY"


# ------------------------------------------------------------------------------------- boundaries


def test_exactly_min_notional_passes_and_one_step_below_is_denied() -> None:
    assert only_request(sized({"method": "fixed_quantity", "quantity": 5}, 1.0)).quantity == D("5.0")
    d = only_denial(sized({"method": "fixed_quantity", "quantity": 4.9}, 1.0))
    assert d.code == "NOTIONAL_BELOW_MIN"
    assert d.message == "NOTIONAL_BELOW_MIN symbol=FILUSDT notional=4.9 min=5"


def test_rounds_to_zero_is_denied() -> None:
    d = only_denial(sized({"method": "fixed_notional", "notional": 0.1}, 3.0))
    assert d.code == "QTY_ROUNDS_TO_ZERO"
    assert d.message.startswith("QTY_ROUNDS_TO_ZERO symbol=FILUSDT qty=0.03333333 step=0.1")


def test_below_min_qty_is_denied() -> None:
    rules = all_rules()
    sym = next(s for s, r in rules.items() if r.is_trading and r.min_qty > r.step_size and s in all_brackets())
    r = rules[sym]
    h = Harness({"sizing": {"method": "fixed_quantity", "quantity": float(r.min_qty - r.step_size)}})
    # priced so that notional is not the binding rule
    price = float(r.min_notional / r.min_qty * 2)
    d = only_denial(h.intent("OPEN_LONG", sym, price))
    assert d.code == "QTY_BELOW_MIN" and f"min={r.min_qty}" in d.message


def test_tiny_equity_is_denied_not_rounded_up() -> None:
    d = only_denial(sized({"method": "percent_equity", "percent": 10}, 2.0, account=FakeAccount(D("0.5"))))
    assert d.code == "QTY_ROUNDS_TO_ZERO"
    d = only_denial(sized({"method": "percent_equity", "percent": 10}, 2.0, account=FakeAccount(D(40))))
    assert d.code == "NOTIONAL_BELOW_MIN"  # 4 USDT of FIL


def test_huge_equity_is_capped_by_max_qty_and_bracket() -> None:
    h = Harness(
        {"sizing": {"method": "percent_equity", "percent": 100}, "leverage": {FIL: 20}},
        account=FakeAccount(D(10) ** 12),
    )
    req = only_request(h.intent("OPEN_LONG", FIL, 2.0))
    rules, brackets = all_rules()[FIL], all_brackets()[FIL]
    assert req.quantity <= rules.market_max_qty
    assert req.quantity * 2 <= brackets.max_notional(20)
    assert any(a.startswith("capped by max qty") for a in req.adjustments), req.adjustments
    h2 = Harness(
        {"sizing": {"method": "percent_equity", "percent": 100}, "leverage": {FIL: 20}},
        account=FakeAccount(D(10) ** 12),
    )
    req2 = only_request(h2.intent("OPEN_LONG", FIL, 200.0))
    assert req2.quantity * 200 <= brackets.max_notional(20)
    assert any(a.startswith("capped by bracket notional 800000 at 20x") for a in req2.adjustments)


def test_margin_cap_includes_fees_and_buffer() -> None:
    acct = FakeAccount(D(10_000), available=D(100))
    h = Harness({"sizing": {"method": "percent_equity", "percent": 100}, "leverage": {FIL: 2}}, account=acct)
    req = only_request(h.intent("OPEN_LONG", FIL, 2.0))
    # usable 99; per unit 2 * (1/2 + 0.0005) = 1.001 -> 98.9010989 -> 98.9
    assert req.quantity == D("98.9")
    assert req.adjustments[0] == "capped by margin 5000→98.9010989"
    margin = req.quantity * 2 / 2 + req.quantity * 2 * TAKER
    assert margin <= D(100)


def test_no_margin_is_denied() -> None:
    d = only_denial(
        sized({"method": "fixed_notional", "notional": 50}, 2.0, account=FakeAccount(D(100), available=D(0)))
    )
    assert d.code == "INSUFFICIENT_MARGIN"


def test_bracket_cap_reached_when_adding() -> None:
    acct = FakeAccount(D(10) ** 9)
    acct.set_position(FIL, 400_000, 2.0)  # 800,000 notional: the 20x cap
    h = Harness({"sizing": {"method": "fixed_notional", "notional": 100}, "leverage": {FIL: 20}}, account=acct)
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "BRACKET_CAP_REACHED"


# --------------------------------------------------------------------------------------- prices


def test_limit_price_on_the_grid_is_kept() -> None:
    req = only_request(sized({"method": "fixed_notional", "notional": 100}, 2.0, limit_price=1.999))
    assert (req.order_type, req.price, req.time_in_force) == (OrderType.LIMIT, D("1.999"), TimeInForce.GTC)
    assert req.quantity == D("50.0")  # sized at the limit price: 100 / 1.999 = 50.02


def test_limit_price_off_the_grid_rounds_passively() -> None:
    buy = only_request(sized({"method": "fixed_notional", "notional": 100}, 2.0, limit_price=1.9996))
    assert buy.price == D("1.999") and "limit price rounded 1.9996→1.999" in buy.adjustments
    h = Harness({"sizing": {"method": "fixed_notional", "notional": 100}})
    sell = only_request(h.intent("OPEN_SHORT", FIL, 2.0, limit_price=2.0001))
    assert sell.price == D("2.001") and sell.side is Side.SELL


def test_limit_beyond_percent_price_is_denied() -> None:
    d = only_denial(sized({"method": "fixed_notional", "notional": 100}, 2.0, limit_price=2.2))  # > 2 * 1.05
    assert d.code == "PRICE_ABOVE_MARK_CAP" and "binance_code=-4016" in d.message


def test_bad_reference_price() -> None:
    assert only_denial(sized({"method": "fixed_notional", "notional": 100}, 0.0)).code == "BAD_PRICE"
    assert only_denial(sized({"method": "fixed_notional", "notional": 100}, float("nan"))).code == "BAD_PRICE"
