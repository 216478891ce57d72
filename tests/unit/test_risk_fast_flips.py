"""The fast path's flips (``FastIntents.flip``) answer as the general decision, and the gate sends them as it would.

A flip is a MARKET entry against an open opposite position: the general decision sends a reduce-only close of the
position, then the entry, sized with the position's margin counted as released. The fast path answers only where
the general one would send exactly those two requests; here it meets the limits that could tell them apart (the
margin with and without the released part, the min notional, the max quantity, a close split at the max or raised
to the min, a position off the lot grid, no equity) for every sizing it takes, and a few plants show the comparison
sees a wrong answer.
"""

from __future__ import annotations

import builtins
import dataclasses
import itertools
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.enums import IntentAction
from kinetic_empire.core.events import OrderIntent, OrderRequest
from kinetic_empire.risk import fast_path
from kinetic_empire.risk.decision import IntentDecider
from kinetic_empire.risk.fast_path import FastIntents
from tests.support.risk_fakes import FakeAccount, Harness, all_rules, judged_fast

SIZINGS = [{"method": "fixed_quantity", "quantity": 100}, {"method": "fixed_notional", "notional": 250},
           {"method": "percent_equity", "percent": 10}, {"method": "percent_equity", "percent": 95}]


def _fast(h: Harness) -> FastIntents:
    return FastIntents(h.rm._decider, h.account, h.rules, h.brackets, h.rm.config, h.rm._states)


def _flips(held: D, price: float, quantities: list[D | None]) -> Iterator[OrderIntent]:
    """The entries against a position of ``held`` (both actions: one flips it, one adds to it)."""
    n = itertools.count()
    for action in (IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT):
        for qty in quantities:
            yield OrderIntent(intent_id=f"f-{held}-{next(n)}", strategy_id="s1", symbol="FILUSDT", action=action,
                              quantity=qty, reference_price=price, ts_event=1, ts_init=1)


def _around(x: D) -> list[D | None]:
    """Quantities on both sides of ``x``, on the lot grid (0.1) and off it, and the sizing's own (None)."""
    near = [(x * D(f)).quantize(D("0.0001")) for f in ("0.5", "0.99", "0.999", "1", "1.001", "1.01", "2")]
    return [None, *near, near[3] + D("0.05"), near[3] - D("0.05")]


def _judged(sizing: dict[str, Any], wallet: D, held: D, leverage: int, lots: dict[str, D] | None = None
            ) -> tuple[int, int]:
    account = FakeAccount(wallet)
    account.set_position("FILUSDT", held, 5.0, leverage)
    rules = {**all_rules(), "FILUSDT": dataclasses.replace(all_rules()["FILUSDT"], **(lots or {}))}
    h = Harness({"default_leverage": 3, "sizing": sizing}, account=account, rules=rules)
    fast = _fast(h)
    # the margin limit with the released part: (wallet * usable share + |held| * price / leverage) / (price * rate)
    _, rate = h.rm._decider._per_leverage("FILUSDT", h.brackets["FILUSDT"], 3)
    price = D("5.123")
    usable = wallet * h.rm._decider._usable_pct / 100 + abs(held) * price / max(leverage, 1)
    limit = usable / (price * rate)
    return judged_fast(fast, h, _flips(held, 5.123, _around(limit) + _around(abs(held)) + [D(1), D(10) ** 9]))


@pytest.mark.parametrize("sizing", SIZINGS, ids=lambda s: f"{s['method']}-{next(iter(s.values()))}")
def test_a_flip_is_answered_as_the_general_decision_at_every_limit(sizing: dict[str, Any]) -> None:
    answered = passed = 0
    for wallet, held, leverage in itertools.product(
        (D(0), D(150), D(10_000), D(10) ** 9),
        (D(100), D(-50), D("100.05"), D("0.01"), D(-60_000)),  # off the grid, under the min, above the max qty
        (1, 3, 20),
    ):
        a, p = _judged(sizing, wallet, held, leverage)
        answered += a
        passed += p
    assert answered > 100 and passed > 100, (answered, passed)


def test_a_flip_with_the_min_above_the_step_and_a_low_max_is_answered_as_the_general_decision() -> None:
    lots = {"market_min_qty": D("1.5"), "market_max_qty": D("400")}
    answered = passed = 0
    for held in (D(100), D(-399), D("-400.05"), D(1), D("1.55")):
        for sizing in SIZINGS:
            a, p = _judged(sizing, D(10_000), held, 3, lots)
            answered, passed = answered + a, passed + p
    assert answered > 20 and passed > 20, (answered, passed)


def test_the_gate_sends_a_fast_flip_as_it_sends_the_general_one() -> None:
    """The same requests in the same order, and the close counted in flight against the position."""
    def run(fast: bool) -> tuple[list[OrderRequest], Any]:
        account = FakeAccount(D(10_000))
        account.set_position("FILUSDT", D(100), 5.0, 3)
        h = Harness({"default_leverage": 3, "sizing": {"method": "percent_equity", "percent": 10}}, account=account)
        if fast:
            h.rm.use_fast_path()
        h.rm.on_intent(OrderIntent(intent_id="g-1", strategy_id="s1", symbol="FILUSDT",
                                   action=IntentAction.OPEN_SHORT, reference_price=5.123, ts_event=1, ts_init=1))
        flying = h.rm.exits._symbols["FILUSDT"]
        return [e for e in h.events if isinstance(e, OrderRequest)], (flying.long, flying.left, dict(flying.flying))

    general, fast = run(False), run(True)
    assert len(general[0]) == 2 and general[0][0].reduce_only and not general[0][1].reduce_only
    assert fast == general


@pytest.mark.parametrize("plant", ["released margin doubled", "the close's note", "size off by a step"])
def test_a_planted_bug_in_a_flip_is_caught(plant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if plant == "released margin doubled":
        # (the leverage the released margin divides by halved: 3x counted as 1x; the close's Decimal max kept)
        monkeypatch.setattr(fast_path, "max", lambda a, b: builtins.max(a // 2 if type(a) is int else a, b),
                            raising=False)
    elif plant == "the close's note":
        monkeypatch.setattr(fast_path, "fmt", lambda v: f"{v:f}" + " ")
    else:
        sized = FastIntents._sized
        monkeypatch.setattr(FastIntents, "_sized", lambda self, cfg, price: (lambda q: None if q is None else
                                                                             q + D("0.1"))(sized(self, cfg, price)))
    with pytest.raises(AssertionError):  # (a wallet whose margin limit is under the bracket's cap)
        for sizing in SIZINGS:
            _judged(sizing, D(150), D(100), 3)


def test_a_rehearsal_warms_the_path_the_gate_takes_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RiskManager.rehearse`` (live.close_poll) runs the fast flip where on_intent would, not the general decision,
    and publishes nothing; without the fast path it runs the general decision."""
    calls: list[str] = []
    flip, decide = FastIntents.flip, IntentDecider.decide
    monkeypatch.setattr(FastIntents, "flip", lambda self, *a: calls.append("flip") or flip(self, *a))
    monkeypatch.setattr(IntentDecider, "decide", lambda self, *a: calls.append("general") or decide(self, *a))
    for fast in (True, False):
        account = FakeAccount(D(10_000))
        account.set_position("FILUSDT", D(100), 5.0, 3)
        h = Harness({"default_leverage": 3, "sizing": {"method": "percent_equity", "percent": 10}}, account=account)
        if fast:
            h.rm.use_fast_path()
        published = len(h.events)
        h.rm.rehearse(OrderIntent(intent_id="rehearsal", strategy_id="s1", symbol="FILUSDT",
                                  action=IntentAction.OPEN_SHORT, reference_price=5.123, ts_event=1, ts_init=1))
        assert len(h.events) == published
    assert calls == ["flip", "general"]
