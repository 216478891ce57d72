"""Shared fakes for the risk tests: a plain AccountView and a harness around a real EventBus.

(No tests here; the other tests/test_risk_*.py modules import from it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

from kinetic_empire.core.account import PositionView
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import IntentAction, OrderStatus, OrderType, Side
from kinetic_empire.core.events import (
    OrderFilled,
    OrderIntent,
    OrderRequest,
    PositionChanged,
    RiskDenied,
    TradingStateChanged,
)
from kinetic_empire.core.rules import LeverageBrackets, SymbolRules
from kinetic_empire.resources import default_brackets, default_symbol_rules
from kinetic_empire.risk import RiskConfig, RiskManager

D = Decimal
TAKER = D("0.0005")
MAKER = D("0.0002")
T0 = 1_766_534_400_000  # 2025-12-24 00:00 UTC


@cache
def all_rules() -> dict[str, SymbolRules]:
    return default_symbol_rules(full=True)


@cache
def all_brackets() -> dict[str, LeverageBrackets]:
    return default_brackets()


class FakeAccount:
    """An AccountView with plain fields; equity and available default to the wallet balance."""

    def __init__(self, wallet: Decimal | int = 10_000, equity: Decimal | None = None, available: Decimal | None = None):
        self.wallet = D(wallet)
        self.equity_value = equity
        self.available_value = available
        self.pos: dict[str, PositionView] = {}
        self.prices: dict[str, float] = {}

    def wallet_balance(self) -> Decimal:
        return self.wallet

    def equity(self) -> Decimal:
        return self.wallet if self.equity_value is None else self.equity_value

    def available_balance(self) -> Decimal:
        return self.equity() if self.available_value is None else self.available_value

    def position(self, symbol: str) -> PositionView:
        return self.pos.get(symbol, PositionView(symbol, D(0), D(0), 1))

    def positions(self) -> list[PositionView]:
        return [p for p in self.pos.values() if p.quantity != 0]

    def last_price(self, symbol: str) -> float:
        return self.prices.get(symbol, 0.0)

    def leverage(self, symbol: str) -> int:
        return self.position(symbol).leverage

    def set_position(self, symbol: str, qty: Any, entry: Any, leverage: int = 1) -> None:
        self.pos[symbol] = PositionView(symbol, D(str(qty)), D(str(entry)), leverage)
        self.prices.setdefault(symbol, float(entry))


class Harness:
    """A RiskManager on a real bus, with every published event collected in order."""

    def __init__(
        self,
        config: Mapping[str, Any] | RiskConfig | None = None,
        *,
        account: FakeAccount | None = None,
        rules: Mapping[str, SymbolRules] | None = None,
        brackets: Mapping[str, LeverageBrackets] | None = None,
        now: int = T0,
    ) -> None:
        self.bus = EventBus()
        self.clock = ReplayClock(now)
        self.account = account or FakeAccount()
        self.rules = rules if rules is not None else all_rules()
        self.brackets = brackets if brackets is not None else all_brackets()
        self.events: list[Any] = []
        self.bus.subscribe(object, self.events.append)
        cfg = config if isinstance(config, RiskConfig) else RiskConfig.from_mapping(config or {})
        self.rm = RiskManager(
            self.bus,
            self.clock,
            self.account,
            self.rules,
            self.brackets,
            cfg,
            fee_rate_taker=TAKER,
            fee_rate_maker=MAKER,
        )
        self._seq = 0

    def intent(self, action: IntentAction | str, symbol: str, price: float, **kw: Any) -> list[Any]:
        """Publish an intent; return the events it caused (the intent itself excluded)."""
        self._seq += 1
        kw.setdefault("intent_id", f"t{self._seq}")
        kw.setdefault("strategy_id", "s1")
        intent = OrderIntent(
            symbol=symbol,
            action=IntentAction(action),
            reference_price=price,
            ts_event=self.clock.now_ms(),
            ts_init=self.clock.now_ms(),
            **kw,
        )
        return self.publish(intent)

    def publish(self, event: Any) -> list[Any]:
        start = len(self.events)
        self.bus.publish(event)
        return self.events[start + 1 :]

    def fill(
        self, request: OrderRequest, price: Any, *, qty: Any = None, pnl: Any = 0, final: bool = True
    ) -> list[Any]:
        q = request.quantity if qty is None else D(str(qty))
        now = self.clock.now_ms()
        return self.publish(
            OrderFilled(
                client_order_id=request.client_order_id,
                order_id=1,
                trade_id=1,
                symbol=request.symbol,
                side=request.side,
                order_type=request.order_type,
                quantity=q or D(0),
                price=D(str(price)),
                commission=D(0),
                realized_pnl=D(str(pnl)),
                is_maker=False,
                status=OrderStatus.FILLED if final else OrderStatus.PARTIALLY_FILLED,
                reduce_only=request.reduce_only,
                ts_event=now,
                ts_init=now,
            )
        )

    def position_changed(self, symbol: str, qty: Any, entry: Any = 0) -> list[Any]:
        now = self.clock.now_ms()
        self.account.set_position(symbol, qty, entry or 1)
        return self.publish(
            PositionChanged(
                symbol=symbol, quantity=D(str(qty)), entry_price=D(str(entry)), leverage=1, ts_event=now, ts_init=now
            )
        )


def judged_fast(fast: Any, h: Harness, intents: Any) -> tuple[int, int]:
    """Each intent's fast decision (a ``risk.fast_path.FastIntents``), where it gives one, is the general decision:
    (answered, passed to it)."""
    answered = passed = 0
    for intent in intents:
        quick = fast.decide(intent, 7)
        if quick is None:
            passed += 1
        else:
            answered += 1
            assert quick == h.rm._decider.decide(intent, 7), intent
    return answered, passed


def requests(events: list[Any]) -> list[OrderRequest]:
    return [e for e in events if isinstance(e, OrderRequest)]


def denials(events: list[Any]) -> list[RiskDenied]:
    return [e for e in events if isinstance(e, RiskDenied)]


def states(events: list[Any]) -> list[TradingStateChanged]:
    return [e for e in events if isinstance(e, TradingStateChanged)]


def only_request(events: list[Any]) -> OrderRequest:
    assert not denials(events), denials(events)
    reqs = requests(events)
    assert len(reqs) == 1, reqs
    return reqs[0]


def only_denial(events: list[Any]) -> RiskDenied:
    assert not requests(events), requests(events)
    found = denials(events)
    assert len(found) == 1, events
    return found[0]


__all__ = [
    "MAKER",
    "T0",
    "TAKER",
    "D",
    "FakeAccount",
    "Harness",
    "OrderType",
    "Side",
    "all_brackets",
    "all_rules",
    "denials",
    "only_denial",
    "only_request",
    "requests",
    "states",
]
