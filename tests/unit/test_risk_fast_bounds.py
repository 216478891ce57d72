"""The fast path's float bounds and inlined checks answer as the general decision (``risk.fast_path``).

The fast path skips two Decimal products where a float product shows the answer with room for its roundings (the
min notional, the margin the available balance covers), and writes client ids without ``ids.client_id`` where the
id is valid as it is. Here they meet the cases that could tell them apart: float products that round up onto the
min notional while the Decimal product is below it, quantities a hair on both sides of the margin limit, and
intent ids with every kind of character; each check is also planted wrong once to show the comparison sees it.
"""

from __future__ import annotations

import dataclasses
import random
import re
import string
from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.enums import IntentAction
from kinetic_empire.core.events import OrderIntent
from kinetic_empire.risk import fast_path
from kinetic_empire.risk.fast_path import FastIntents
from tests.support.risk_fakes import FakeAccount, Harness, all_rules, judged_fast


class CoversAccount(FakeAccount):
    """A FakeAccount that answers ``available_covers`` exactly (the portfolio's is a conservative float bound)."""

    def available_covers(self, amount: float) -> bool:
        available = self.available_balance()
        return available > 0 and available > D(amount)


def _fast(h: Harness) -> FastIntents:
    return FastIntents(h.rm._decider, h.account, h.rules, h.brackets, h.rm.config, h.rm._states)


def _entry(qty: D | None, price: float, intent_id: str = "i-1", action: IntentAction = IntentAction.OPEN_LONG
           ) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, strategy_id="s1", symbol="FILUSDT", action=action, quantity=qty,
                       reference_price=price, ts_event=1, ts_init=1)


# ------------------------------------------------------------------------------------- the min notional


def _ties() -> list[tuple[float, D]]:
    """(price, quantity) pairs around FILUSDT's min notional (5) whose float product is at least 5 while the
    Decimal one (of the price's shortest digits) is below it, and their neighbours on the lot grid."""
    rng = random.Random(5)
    found: list[tuple[float, D]] = []
    while len(found) < 60:
        qty = D(rng.randint(1, 400)) / 10  # on FILUSDT's lot grid (0.1)
        price = 5 / float(qty)
        for _ in range(4):  # the floats just around 5 / qty
            dec = D(repr(price))
            if float(qty) * price >= 5.0 and qty * dec < 5:
                found += [(price, qty), (price, qty + D("0.1")), (price, qty - D("0.1"))]
                break
            price = float.__new__(float, price + price * 2.0**-52)
    return found


@pytest.mark.parametrize("sizing", [{"method": "fixed_quantity", "quantity": 100},
                                    {"method": "fixed_notional", "notional": 5}], ids=["qty", "notional"])
def test_entries_at_the_min_notional_answer_as_the_general_decision(sizing: dict[str, Any]) -> None:
    h = Harness({"default_leverage": 2, "sizing": sizing}, account=CoversAccount(10_000))
    fast = _fast(h)
    answered = passed = 0
    for i, (price, qty) in enumerate(_ties()):
        for quantity in (qty, None):
            intent = _entry(quantity, price, f"i-{i}")
            quick = fast.decide(intent, 7)
            general = h.rm._decider.decide(intent, 7)
            if quick is None:
                passed += 1
            else:
                answered += 1
                assert quick == general, intent
            if quantity is qty:  # the ties themselves: the general decision denies them, so must the fast one
                below = qty * D(repr(price)) < 5
                assert below == (quick is None), intent
    assert answered > 15 and passed > 30, (answered, passed)


def test_a_min_notional_bound_without_room_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_path, "_ROOM", 1.0)
    with pytest.raises(AssertionError):
        test_entries_at_the_min_notional_answer_as_the_general_decision({"method": "fixed_quantity", "quantity": 100})


def test_a_coarse_decimal_context_keeps_the_decimal_comparisons() -> None:
    """With fewer than 28 digits a Decimal product may round by more than the bounds' room: no bound is used."""
    import decimal

    with decimal.localcontext(decimal.Context(prec=12)):
        h = Harness({"default_leverage": 2}, account=CoversAccount(10_000))
        fast = _fast(h)
        fast.decide(_entry(D(2), 5.0), 7)
        s = fast._symbols["FILUSDT"]
        assert s is not None and s.notional_f != s.notional_f and fast._covers is None  # (NaN: never above it)


# ------------------------------------------------------------------------------------- the margin limit


@pytest.mark.parametrize("wallet", [D(150), D("1234.5678"), D(20_000)])
@pytest.mark.parametrize("leverage", [1, 3, 20])
def test_entries_at_the_margin_limit_answer_as_the_general_decision(wallet: D, leverage: int) -> None:
    """Quantities within a few lots and within parts per billion of the most the available balance allows."""
    rules = {**all_rules(), "FILUSDT": dataclasses.replace(all_rules()["FILUSDT"], market_step_size=D("0.000001"),
                                                           step_size=D("0.000001"), min_notional=D(0))}
    h = Harness({"default_leverage": leverage}, account=CoversAccount(wallet), rules=rules)
    fast = _fast(h)
    _, rate = h.rm._decider._per_leverage("FILUSDT", h.brackets["FILUSDT"], leverage)
    intents = []
    for n, price in enumerate((5.123, 0.517, 40.0, 1.0000000000000002, 3.3333333333333335)):
        limit = wallet * D("0.99") / (D(repr(price)) * rate)  # usable / (price * rate), the margin cap
        grid = limit.quantize(D("0.000001"))
        intents += [_entry(qty, price, f"i-{n}-{k}") for k, qty in enumerate((
            grid - D("0.000002"), grid - D("0.000001"), grid, grid + D("0.000001"), limit, limit * (1 + D("1e-9")),
            limit * (1 - D("1e-9"))))]  # fmt: skip
    answered, passed = judged_fast(fast, h, intents)
    assert answered >= 10 and passed >= 10, (answered, passed)


def _margin_a_little_low(self: FastIntents, s: Any, ref: float) -> Any:
    made = _AT(self, s, ref)
    if made is not None:  # the margin's float 1e-7 low, remembered as _at remembers its answer
        made = s.prices[ref] = (*made[:2], made[2] * (1 - 1e-7))
    return made


_AT = FastIntents._at


def test_a_margin_bound_of_another_product_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FastIntents, "_at", _margin_a_little_low)
    with pytest.raises(AssertionError):
        for lev in (1, 3, 20):
            test_entries_at_the_margin_limit_answer_as_the_general_decision(D(150), lev)


# ------------------------------------------------------------------------------------------ client ids


def _intent_ids() -> list[str]:
    rng = random.Random(23)
    alphabet = string.ascii_letters + string.digits + ".:/_-" + " \n\t+#é€=,"
    made = ["b0FILUSDT-1", "s-" + "9" * 31, "s-" + "9" * 32, "s-" + "9" * 33, "x\n", "a" * 34, "a" * 40, "ü-1"]
    for _ in range(300):
        n = rng.choice((rng.randint(1, 12), rng.randint(28, 40)))
        pool = alphabet if rng.random() < 0.3 else alphabet[:-10]
        made.append("".join(rng.choice(pool) for _ in range(n)))
    return made


def test_client_ids_of_entries_and_closes_are_the_general_ones() -> None:
    flat, held = CoversAccount(10_000), CoversAccount(10_000)
    held.set_position("FILUSDT", 100, 5.0)
    kept = cleaned = 0
    for account, action in ((flat, IntentAction.OPEN_SHORT), (held, IntentAction.CLOSE)):
        h = Harness({"default_leverage": 2}, account=account)
        fast = _fast(h)
        for intent_id in _intent_ids():
            intent = _entry(None if action is IntentAction.CLOSE else D(100), 5.0, intent_id, action)
            quick = fast.decide(intent, 7)
            assert quick is not None and quick == h.rm._decider.decide(intent, 7), intent
            cid = quick[0][0].client_order_id
            kept += cid.startswith(intent_id)
            cleaned += not cid.startswith(intent_id)
    assert kept > 100 and cleaned > 100, (kept, cleaned)


def test_a_planted_bug_in_the_inlined_client_id_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_path, "_VALID", re.compile(r"[.A-Z:/a-z0-9_ -]{1,36}").fullmatch)
    with pytest.raises(AssertionError):
        test_client_ids_of_entries_and_closes_are_the_general_ones()


# ---------------------------------------------------------------------------------------- trading states


def _held(states: Any) -> bool:
    """What ``TradingStates.calm`` must say, from the sources themselves (its negation)."""
    from kinetic_empire.core.enums import TradingState

    return not (states.operator is TradingState.ACTIVE and not states.operator_symbol
                and states.drawdown_denial is None and states.daily_denial is None and not states.cooldown_until
                and not states.pauses)


def test_the_states_calm_flag_follows_every_change() -> None:
    """``calm`` (read by the fast path instead of the sources) after every kind of change, in random orders, and as
    seen by whoever hears the change announced."""
    from kinetic_empire.core.enums import TradingState
    from kinetic_empire.risk.guards import deny
    from kinetic_empire.risk.state import TradingStates

    seen: list[bool] = []
    states: Any = None

    def publish(*_: Any) -> None:
        seen.append(states.calm == (not _held(states)))

    rng = random.Random(3)
    changes = calm = 0
    for start in ({}, {"BTCUSDT": TradingState.REDUCING}):
        states = TradingStates(TradingState.ACTIVE, start, publish)
        assert states.calm == (not _held(states))
        for step in range(400):
            kind = rng.randrange(9)
            symbol = rng.choice(("FILUSDT", "BTCUSDT"))
            if kind == 0:
                states.set_operator(rng.choice(list(TradingState)), "op", rng.choice((None, None, None, symbol)))
            elif kind == 1:
                states.pause(rng.choice(("feed", "ops")), "stale")
            elif kind == 2:
                states.resume(rng.choice(("feed", "ops")), "fresh")
            elif kind == 3:
                states.latch_daily(deny("DAILY_LOSS_LIMIT", loss=1), step * 10 + 5)
            elif kind == 4:
                states.latch_drawdown(deny("MAX_DRAWDOWN", drawdown=1))
            elif kind == 5:
                states.reset_drawdown("human")
            elif kind == 6:
                states.start_cooldown(symbol, step * 10 + rng.randint(0, 30), "streak")
            elif kind == 7:
                states.expire(step * 10)
            else:
                states.set_operator(TradingState.ACTIVE, "op")
                states.operator_symbol.clear()  # (a symbol's own state set once stays: start over)
                states.sync("test")
                states.reset_drawdown("human")
                states.expire(10**9)
                for source in ("feed", "ops"):
                    states.resume(source, "fresh")
            changes += 1
            assert states.calm == (not _held(states)), (step, kind)
            calm += states.calm
    assert all(seen) and len(seen) > 100 and 50 < calm < changes - 50, (len(seen), calm)


def test_a_calm_flag_that_misses_a_source_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from kinetic_empire.risk.state import TradingStates

    monkeypatch.setattr(TradingStates, "_calm", lambda self: self.operator.value == "ACTIVE" and not self.pauses)
    with pytest.raises(AssertionError):
        test_the_states_calm_flag_follows_every_change()


# ------------------------------------------------------------------------------------- the bracket's cap


@pytest.mark.parametrize("leverage", [1, 3, 20])
def test_entries_at_the_bracket_cap_answer_as_the_general_decision(leverage: int) -> None:
    """Quantities within the last digits of the bracket cap's quotient ``cap / price``, on both sides."""
    h = Harness({"default_leverage": leverage}, account=CoversAccount(D(10) ** 9))
    fast = _fast(h)
    cap, _ = h.rm._decider._per_leverage("FILUSDT", h.brackets["FILUSDT"], leverage)
    intents = []
    for n, price in enumerate((5.123, 0.517, 40.0, 1.0000000000000002, 3.3333333333333335, 7.1, 2.9)):
        limit = cap / D(repr(price))
        intents += [_entry(qty, price, f"i-{n}-{k}") for k, qty in enumerate((
            limit, limit.next_plus(), limit.next_minus(), limit * (1 + D("1e-16")), limit * (1 - D("1e-16")),
            limit * (1 + D("1e-13")), limit * (1 - D("1e-13"))))]  # fmt: skip
    answered, passed = judged_fast(fast, h, intents)
    assert answered >= 10 and passed >= 10, (answered, passed)


def test_a_cap_bound_without_room_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_path, "_ROOM", 1.0)
    with pytest.raises(AssertionError):
        for lev in (1, 3, 20):
            test_entries_at_the_bracket_cap_answer_as_the_general_decision(lev)
