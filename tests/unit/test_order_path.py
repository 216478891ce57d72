"""The lean backtest order path (issue 17, target 2): cheap events that are the same events, requests the
risk gate stamps as checked, and exchange checks that give the same answers by a shorter way."""

from __future__ import annotations

import inspect
import itertools
from dataclasses import FrozenInstanceError, fields, replace
from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.event_factories import FACTORIES
from kinetic_empire.core.events import OrderCanceled, OrderRequest
from kinetic_empire.core.rules import SymbolRules
from tests.support.risk_fakes import FakeAccount, Harness, all_rules, requests
from tests.unit.test_exchange import Venue

FIL = "FILUSDT"


def _distinct_values(cls: type) -> dict[str, Any]:
    """A different value for every field (same type as it holds), so a value stored under the wrong name shows."""
    out: dict[str, Any] = {}
    for i, f in enumerate(fields(cls)):
        hint = str(f.type)
        if "Decimal" in hint:
            out[f.name] = D(f"{i}.{i}0")
        elif hint.startswith("int"):
            out[f.name] = 1000 + i
        elif hint.startswith("float"):
            out[f.name] = i + 0.25
        elif hint.startswith("bool"):
            out[f.name] = i % 2 == 0
        elif hint.startswith("tuple"):
            out[f.name] = (f"note {i}",)
        else:  # str, enums: the default or the enum's first member, else a string
            enum = next((t for t in ("Side", "OrderType", "OrderStatus", "IntentAction", "BalanceReason",
                                     "TimeInForce", "WorkingType") if hint.startswith(t)), None)
            if enum is not None:
                import kinetic_empire.core.enums as enums

                members = list(getattr(enums, enum))
                out[f.name] = members[i % len(members)]
            else:
                out[f.name] = f"{f.name}-{i}"
    return out


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
def test_each_factory_builds_the_dataclass_event(cls: type) -> None:
    factory = FACTORIES[cls]
    values = _distinct_values(cls)
    params = list(inspect.signature(factory).parameters)
    made = factory(*(values[p] for p in params))
    expected = cls(**values)
    assert type(made) is cls and made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    assert all(getattr(made, f.name) == values[f.name] for f in fields(cls))
    with pytest.raises(FrozenInstanceError):
        made.ts_event = 1  # type: ignore[misc]
    assert replace(made) == made  # an ordinary instance: dataclass helpers work on it


def test_a_factory_that_misses_a_field_fails_at_import() -> None:
    import kinetic_empire.core.event_factories as module

    source = inspect.getsource(module)
    assert "must take exactly the fields of" in source  # the import-time check exists and raises TypeError


# ------------------------------------------------------------------------------------ the stamp


def test_entries_and_exits_that_pass_the_filters_leave_the_gate_stamped() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "-12.3", 2.1)
    h = Harness({"sizing": {"method": "fixed_notional", "notional": 100}}, account=acct)
    close, entry = requests(h.intent("OPEN_LONG", FIL, 2.0, intent_id="f"))
    assert close.rules_checked and entry.rules_checked
    h.fill(close, 2.0), h.fill(entry, 2.0), h.position_changed(FIL, "50", 2.0)  # the flip lands before the exit
    (exit_,) = requests(h.intent("CLOSE", FIL, 2.0, intent_id="g"))
    assert exit_.rules_checked and exit_.reduce_only


def test_an_exit_the_filters_refuse_goes_unstamped_and_the_exchange_refuses_it() -> None:
    rules = dict(all_rules())
    rules[FIL] = replace(rules[FIL], status="SETTLING")  # SymbolRules: not trading, every order fails the check
    acct = FakeAccount()
    acct.set_position(FIL, "10", 2.0)
    h = Harness(account=acct, rules=rules)
    (exit_,) = requests(h.intent("CLOSE", FIL, 2.0, intent_id="s"))
    assert not exit_.rules_checked  # the gate does not deny exits for the filters: the exchange says why


def test_the_exchange_skips_only_the_filter_check_for_a_stamped_order(rules, brackets) -> None:
    venue = Venue(rules, brackets)
    with pytest.raises(ExchangeError) as off_step:
        venue.buy("100.05")  # FILUSDT's market step is 0.1: -1111 (precision) as Binance answers
    assert off_step.value.code == -1111
    order = venue.buy("100.05", rules_checked=True)  # the gate vouched for it: not checked again
    assert order.quantity == D("100.05")
    with pytest.raises(ExchangeError) as reduce:  # the account's own checks still run for stamped orders
        venue.sell("10", reduce_only=True, rules_checked=True, client_order_id="r1")
    assert reduce.value.code == -2022
    with pytest.raises(ExchangeError) as margin:
        venue.buy("100000000", rules_checked=True, client_order_id="m1")
    assert margin.value.code in (-2019, -2027)


def test_the_request_field_defaults_to_unchecked() -> None:
    r = OrderRequest(client_order_id="a", intent_id="a", strategy_id="s", symbol=FIL, side=Side.BUY,
                     order_type=OrderType.MARKET, quantity=D(1), ts_event=0, ts_init=0)  # fmt: skip
    assert r.rules_checked is False  # a request from anywhere else (a journal, a test) is checked by the exchange


# ---------------------------------------------------------------------------- the shorter checks


def _market_cases(r: SymbolRules) -> Any:
    step = r.market_step_size
    qtys = [D(0), r.market_min_qty, r.market_min_qty - step, step, step / 2, r.market_max_qty,
            r.market_max_qty + step, D("1.50"), D("100"), D("100.0"), D("100.05"), D("-1"), D("12345.6")]
    marks = [D(0), D("0.001"), D("2.0"), D("60000.0")]
    return itertools.product(qtys, marks, (False, True))


@pytest.mark.parametrize("symbol", ["FILUSDT", "BTCUSDT", "ETHUSDT"])
def test_check_market_order_answers_as_check_order(symbol: str) -> None:
    base = all_rules()[symbol]
    for r in (base, replace(base, status="BREAK")):
        for qty, mark, reduce_only in _market_cases(r):
            full = r.check_order(side=Side.BUY, order_type=OrderType.MARKET, quantity=qty, price=None,
                                 trigger_price=None, mark_price=mark, reduce_only=reduce_only)  # fmt: skip
            assert r.check_market_order(qty, mark, reduce_only) == full, (symbol, qty, mark, reduce_only)


def test_precision_is_judged_by_the_written_places_not_the_value(rules) -> None:
    fil = rules[FIL]  # step 0.1: "1.50" has more places than the step even though its value is on it
    assert fil.check_qty(D("1.50"), market=True).binance_code == -1111  # type: ignore[union-attr]
    assert fil.check_qty(D("1.5"), market=True) is None
    assert fil.check_qty(D("2"), market=True) is None  # fewer places: fine
    btc = rules["BTCUSDT"]  # tick 0.10
    assert btc.check_price(D("60000.101")).binance_code == -1111  # type: ignore[union-attr]
    assert btc.check_price(D("60000.1")) is None and btc.check_price(D("60000.10")) is None


def test_remembered_rounding_follows_new_rules_for_a_symbol() -> None:
    rules = dict(all_rules())
    acct = FakeAccount()
    acct.set_position(FIL, "10.03", 2.0)
    h = Harness(account=acct, rules=rules)
    (first,) = requests(h.intent("CLOSE", FIL, 2.0, intent_id="a"))
    assert first.quantity == D("10.1")  # FILUSDT's market step 0.1, rounded up (reduce-only)
    h.publish(OrderCanceled(client_order_id=first.client_order_id, order_id=1, symbol=FIL, ts_event=0, ts_init=0))
    rules[FIL] = replace(rules[FIL], market_step_size=D("1"), market_min_qty=D("1"))  # a refreshed exchangeInfo
    (second,) = requests(h.intent("CLOSE", FIL, 2.0, intent_id="b"))
    assert second.quantity == D("11")
