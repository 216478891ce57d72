"""The runner's intents (``StrategyRunner._collect`` fills the intent's slots itself) equal the ones the keyword
``OrderIntent(...)`` and ``core.event_factories.new_order_intent`` build from the same values, field for field
(``repr``: a Decimal's digits too), and entries in the direction held or already asked for are still ignored."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal as D
from typing import Any

import numpy as np

from kinetic_empire import Strategy
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import IntentAction
from kinetic_empire.core.event_factories import new_order_intent
from kinetic_empire.core.events import OrderIntent
from kinetic_empire.strategy.base import FLAT, Position
from kinetic_empire.strategy.runner import StrategyRunner

# per kline: the actions the strategy takes, and the position it holds first
SCRIPT: dict[int, tuple[Position, list[tuple[str, tuple[Any, ...], dict[str, Any]]]]] = {
    0: (FLAT, [("buy", (), {})]),
    1: (FLAT, [("buy", (0.1,), {"stop_loss": 4.5, "take_profit": 6.0, "tag": "in"}), ("buy", (), {})]),
    2: (Position(1.0, 5.0), [("buy", (), {}), ("sell", (D("2.50"),), {"limit": 4.9, "tag": "flip"})]),
    3: (Position(-1.0, 5.0), [("sell", (3,), {}), ("close_position", ("out",), {}), ("reduce", (0.25, "half"), {})]),
    4: (FLAT, [("sell", (1e-7,), {"stop_loss": 5.5}), ("buy", (D("1E+1"),), {"take_profit": 7})]),
}
ACTIONS = {"buy": IntentAction.OPEN_LONG, "sell": IntentAction.OPEN_SHORT, "close_position": IntentAction.CLOSE,
           "reduce": IntentAction.REDUCE}  # fmt: skip


class Scripted(Strategy):
    timeframe = "1m"

    def on_kline(self, kline: Any) -> None:
        self.position, actions = SCRIPT[len(self.close) - 1]
        for name, args, kwargs in actions:
            getattr(self, name)(*args, **kwargs)


def _expected(i: int, close: float, seq: int) -> tuple[list[dict[str, Any]], int]:
    """The intents of kline ``i`` as keyword arguments, from the script (what buy/sell/close/reduce promise)."""
    held, actions = SCRIPT[i]
    out: list[dict[str, Any]] = []
    for name, args, kwargs in actions:
        action = ACTIONS[name]
        asked = any(o["action"] is action for o in out)
        if action is IntentAction.OPEN_LONG and (held.size > 0 or asked):
            continue
        if action is IntentAction.OPEN_SHORT and (held.size < 0 or asked):
            continue
        qty = args[0] if name in ("buy", "sell") and args else None
        seq += 1
        out.append({
            "intent_id": f"b-s-{seq}", "strategy_id": "s", "symbol": "FILUSDT", "action": action,
            "quantity": qty if qty is None or isinstance(qty, D) else D(repr(qty)),
            "fraction": args[0] if name == "reduce" else None, "stop_loss": kwargs.get("stop_loss"),
            "take_profit": kwargs.get("take_profit"), "limit_price": kwargs.get("limit"), "reference_price": close,
            "tag": kwargs.get("tag", args[-1] if name in ("close_position", "reduce") and args else ""),
            "ts_event": 1000 * i, "ts_init": 1000 * i,
        })  # fmt: skip
    return out, seq


def test_intents_equal_the_keyword_built_ones() -> None:
    bus, clock = EventBus(), ReplayClock()
    strategy = Scripted("FILUSDT")
    runner = StrategyRunner(strategy, bus, clock, strategy_id="s", id_prefix="b-s")
    sent: list[Any] = []
    runner.send_intent = sent.append
    closes = np.array([5.0, 5.1, 4.95, 5.25, 5.5])
    times = np.arange(len(closes), dtype=np.int64) * 60_000
    runner.bind_history(times, closes, closes, closes, closes, closes)
    seq = 0
    for i, close in enumerate(closes.tolist()):
        clock.time_ms = 1000 * i
        before = len(sent)
        runner.on_kline(None)  # type: ignore[arg-type]
        wanted, seq = _expected(i, close, seq)
        made = sent[before:]
        assert [type(e) for e in made] == [OrderIntent] * len(wanted), i
        for e, kw in zip(made, wanted):
            assert asdict(e) == kw  # every slot set, each to its value
            for general in (OrderIntent(**kw), new_order_intent(*kw.values())):
                assert e == general and repr(e) == repr(general) and hash(e) == hash(general)
    assert runner.entries_ignored == 3 and runner.intents_emitted == seq == 7


class Hears(Strategy):
    timeframe = "1m"

    def on_fill(self, fill: Any) -> None:
        pass


def test_hears_fills_is_whether_the_hook_is_the_base_one() -> None:
    """``hears_fills`` (asked on every fill) against its definition, for each kind of hook a strategy may have."""
    base, own, lone, other = Scripted("FILUSDT"), Hears("FILUSDT"), Scripted("FILUSDT"), Scripted("FILUSDT")
    lone.on_fill = lambda fill: None  # type: ignore[method-assign]  # a plain function: no __func__
    other.on_fill = Scripted("FILUSDT").on_fill  # type: ignore[method-assign]  # another instance's base hook
    for strategy in (base, own, lone, other):
        runner = StrategyRunner(strategy, EventBus(), ReplayClock(), strategy_id="s", id_prefix="b-s")
        assert runner.hears_fills() is (getattr(strategy.on_fill, "__func__", None) is not Strategy.on_fill)
    assert [StrategyRunner(s, EventBus(), ReplayClock(), strategy_id="s", id_prefix="b").hears_fills()
            for s in (base, own, lone, other)] == [False, True, True, False]  # fmt: skip
