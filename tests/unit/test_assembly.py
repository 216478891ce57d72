"""The core builder both composition roots use: what it builds and the subscription order it promises."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.assembly import build_core, resolve_strategies, traded_symbols
from kinetic_empire.config import StrategyConfig
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.core.events import KlineClosed, OrderFilled, OrderRequest
from kinetic_empire.core.rules import LeverageBrackets, SymbolRules
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.risk import RiskConfig
from kinetic_empire.strategy import Strategy
from kinetic_empire.strategy.registry import StrategyRegistry

SYM, ETH = "FILUSDT", "ETHUSDT"
T0 = 1_704_067_200_000
MIN = 60_000


class Idle(Strategy):
    """Never trades: these tests drive orders themselves."""

    name = "idle_test"
    timeframe = "1m"

    def on_kline(self, kline):  # type: ignore[no-untyped-def]
        pass


def registry() -> StrategyRegistry:
    r = StrategyRegistry()
    r.add(Idle, "test")
    return r


def build(rules: dict[str, SymbolRules], brackets: dict[str, LeverageBrackets], **kw):  # type: ignore[no-untyped-def]
    bus = EventBus()
    clock = ReplayClock(T0)
    symbols = [SYM, ETH]
    exchange = SimulatedExchange(
        {s: rules[s] for s in symbols}, brackets, clock=clock, emit=bus.publish,
        config=ExchangeConfig(initial_balance=D(1000)), symbols=symbols,
    )  # fmt: skip
    configs = [
        StrategyConfig("idle_test", (SYM,), None, {}, "strategies[0]"),
        StrategyConfig("idle_test", (ETH,), "15m", {}, "strategies[1]"),
    ]
    core = build_core(
        bus=bus, clock=clock, specs=resolve_strategies(configs, registry()), rules=rules, brackets=brackets,
        risk_config=RiskConfig.from_mapping({"default_leverage": 3, "leverage": {ETH: 5}}),
        initial_balance=D(1000), fee_rate_taker=D("0.0005"), fee_rate_maker=D("0.0002"),
        connect_port=lambda bus, _pf: SimulatedBroker(bus, exchange, clock, [(SYM, "1m")]), id_tag="t", **kw,
    )  # fmt: skip
    for sym, lev in core.leverage.items():
        exchange.set_leverage(sym, lev)
    return core, exchange, clock


def kline(t: int, open_: float, close: float) -> KlineClosed:
    return KlineClosed(
        symbol=SYM, timeframe="1m", open_time=t, open=open_, high=max(open_, close), low=min(open_, close),
        close=close, volume=1.0, ts_event=t + MIN - 1, ts_init=t + MIN - 1,
    )  # fmt: skip


def test_specs_leverage_and_runner_ids(rules, brackets) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []
    core, _, _ = build(rules, brackets, last_seq=lambda prefix: asked.append(prefix) or 7)
    assert dict(core.leverage) == {SYM: 3, ETH: 5}
    assert (core.portfolio.leverage(SYM), core.portfolio.leverage(ETH)) == (3, 5)
    assert [(r.symbol, r.timeframe) for r in core.runners] == [(SYM, "1m"), (ETH, "15m")]
    assert asked == [f"t0{SYM}", f"t1{ETH}"]  # a resumed run continues each runner's journaled ids
    assert core.runners[0].owns(f"t0{SYM}-8") and not core.runners[0].owns(f"t1{ETH}-8")
    assert isinstance(core.port, SimulatedBroker)


def test_resolve_fails_on_bad_params_before_anything_is_built() -> None:
    bad = StrategyConfig("idle_test", (SYM,), None, {"nope": 1}, "strategies[3]")
    with pytest.raises(ConfigError, match=r"strategies\[3\]\.params"):
        resolve_strategies([bad], registry())
    assert traded_symbols(resolve_strategies([StrategyConfig("idle_test", (ETH, SYM))], registry())) == [ETH, SYM]


def test_portfolio_sees_commands_first_and_prices_after_the_port(rules, brackets) -> None:  # type: ignore[no-untyped-def]
    core, exchange, clock = build(rules, brackets)
    marks_at_fill: list[float] = []
    core.bus.subscribe(OrderFilled, lambda e: marks_at_fill.append(core.portfolio.last_price(SYM)))
    core.bus.publish(kline(T0, 10.0, 10.0), (SYM, "1m"))
    clock.advance_to(T0 + MIN - 1)
    core.bus.publish(
        OrderRequest(
            client_order_id="o1", intent_id="o1", strategy_id="manual", symbol=SYM, side=Side.BUY,
            order_type=OrderType.MARKET, quantity=D(10), ts_event=clock.now_ms(), ts_init=clock.now_ms(),
        )
    )  # fmt: skip
    clock.advance_to(T0 + MIN)
    core.bus.publish(kline(T0 + MIN, 10.0, 12.0), (SYM, "1m"))  # the market order fills at this open

    # the portfolio saw the request before the exchange accepted it: the order rows carry its strategy
    assert [(o.status, o.strategy_id) for o in core.portfolio.orders] == [("NEW", "manual"), ("FILLED", "manual")]
    # while the fill at the open was booked, positions were marked at the previous close, as the exchange's
    assert marks_at_fill == [10.0] and exchange.last_price_float(SYM) == 12.0
    assert core.portfolio.last_price(SYM) == 12.0
    assert core.portfolio.equity() == core.portfolio.wallet_balance() + 10 * (D(12) - D(10))
