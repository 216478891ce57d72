"""Risk commands (protect, flatten, cancel all) on the backtest's objects: the gate checks them, the bus
carries them, the journal records them before the broker acts, like every strategy order."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import IntentAction, OrderType, Side, TimeInForce, TradingState, WorkingType
from kinetic_empire.core.events import (
    CancelAllRequest,
    CancelRequest,
    KlineClosed,
    OperatorCommand,
    OrderIntent,
    OrderRequest,
    RiskDenied,
)
from kinetic_empire.core.rules import parse_exchange_info
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.live.journal import Journal, read_events
from kinetic_empire.portfolio import Portfolio
from kinetic_empire.resources import default_brackets, exchange_info_payload
from kinetic_empire.risk import RiskConfig, RiskManager

FIL, NEAR = "FILUSDT", "NEARUSDT"
D = Decimal


class Desk:
    """Journal, portfolio, broker and risk manager on one bus; FILUSDT's market lot step made coarse (1)
    while its limit lot step stays 0.1, so a limit fill can leave a position off the market step."""

    def __init__(self, tmp: Path) -> None:
        rules = parse_exchange_info(exchange_info_payload(False))
        rules[FIL] = dataclasses.replace(rules[FIL], market_step_size=D(1), market_min_qty=D(1))
        self.rules = rules
        self.bus = bus = EventBus()
        self.clock = ReplayClock(1_690_866_000_000)
        self.journal = Journal(tmp / "journal.sqlite")
        self.journal.attach(bus)
        self.exchange = SimulatedExchange(rules, default_brackets(), clock=self.clock, emit=bus.publish,
                                          config=ExchangeConfig(initial_balance=D(10_000)), symbols=(FIL, NEAR))
        self.portfolio = Portfolio(bus, D(10_000), follow_prices=False)
        SimulatedBroker(bus, self.exchange, self.clock, [(s, "1m") for s in (FIL, NEAR)])
        self.portfolio.subscribe_prices()  # after the port, as the core builder does
        self.risk = RiskManager(bus, self.clock, self.portfolio, rules, default_brackets(),
                                RiskConfig.from_mapping({"default_leverage": 2}), fee_rate_taker=D("0.0005"),
                                fee_rate_maker=D("0.0002"))
        for s in (FIL, NEAR):
            self.exchange.set_leverage(s, 2)
            self.portfolio.set_leverage(s, 2)
        self.risk.commands.symbols = (FIL, NEAR)
        self.seen: list[Any] = []
        for cls in (OrderIntent, OrderRequest, CancelRequest, CancelAllRequest, RiskDenied):
            bus.subscribe(cls, self.seen.append)
        self.price = {FIL: 4.0, NEAR: 1.2}
        self.move()

    def move(self) -> None:
        t = self.clock.now_ms() + 60_000
        self.clock.advance_to(t)
        for sym, p in self.price.items():
            self.bus.publish(KlineClosed(symbol=sym, timeframe="1m", open_time=t - 60_000, open=p, high=p, low=p,
                                         close=p, volume=1.0, ts_event=t - 1, ts_init=t), (sym, "1m"))

    def order(self, cid: str, symbol: str, qty: str, price: str, side: Side = Side.BUY) -> None:
        self.bus.publish(OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="s", symbol=symbol, side=side,
                                      order_type=OrderType.LIMIT, quantity=D(qty), price=D(price),
                                      time_in_force=TimeInForce.GTC, ts_event=0, ts_init=0))

    def command(self, action: str, *symbols: str, source: str = "operator") -> None:
        now = self.clock.now_ms()
        self.bus.publish(OperatorCommand(action=action, symbols=symbols, source=source, cause="test", ts_event=now,
                                         ts_init=now))

    def journaled(self) -> list[Any]:
        self.journal.flush()
        return list(read_events(self.journal.path))

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.seen if isinstance(e, cls)]


def stop_template(qty_side: Side = Side.SELL, trigger: str = "3.500") -> OrderRequest:
    return OrderRequest(client_order_id="e1-sl", intent_id="e1", strategy_id="s", symbol=FIL, side=qty_side,
                        order_type=OrderType.STOP_MARKET, quantity=None, trigger_price=D(trigger), close_position=True,
                        working_type=WorkingType.CONTRACT_PRICE, ts_event=0, ts_init=0)


def test_flatten_closes_an_off_step_position_through_the_gate_and_the_journal(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.order("e1", FIL, "10.3", "4.100")  # marketable limit: fills on the next kline
    desk.order("n1", NEAR, "10", "1.100")  # rests
    desk.move()
    assert desk.portfolio.position(FIL).quantity == D("10.3")
    desk.command("flatten")
    close = [r for r in desk.of(OrderRequest) if r.strategy_id == "operator"]
    assert len(close) == 1
    (r,) = close
    assert (r.symbol, r.side, r.order_type, r.quantity, r.reduce_only) == (
        FIL, Side.SELL, OrderType.MARKET, D(11), True)
    assert any("10.3→11" in a for a in r.adjustments), r.adjustments  # rounded up to the market step; trimmed
    assert desk.risk.state is TradingState.REDUCING  # no strategy reopens what is being closed
    desk.move()
    assert desk.exchange.position(FIL)[0] == 0 and desk.portfolio.positions() == []
    assert desk.exchange.get_order(NEAR, client_order_id="n1").status.value == "CANCELED"  # by the cancel-all
    kinds = [(type(e).__name__, getattr(e, "symbol", None)) for e in desk.journaled()]
    flatten_at = kinds.index(("OperatorCommand", None))
    after = [k for k in kinds[flatten_at:] if k[0] != "TradingStateChanged"]
    assert after[:3] == [("OperatorCommand", None), ("CancelAllRequest", FIL), ("CancelAllRequest", NEAR)]
    intent = next(e for e in desk.journaled() if isinstance(e, OrderIntent) and e.strategy_id == "operator")
    assert intent.action is IntentAction.CLOSE and r.intent_id == intent.intent_id
    assert kinds.index(("OrderIntent", FIL), flatten_at) < kinds.index(("OrderRequest", FIL), flatten_at)


def test_flatten_lowers_a_halt_so_the_closes_pass(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.order("e1", FIL, "10", "4.100")
    desk.move()
    desk.risk.set_state(TradingState.HALTED, "operator halt")
    desk.command("flatten", FIL)
    assert not desk.of(RiskDenied)
    assert desk.risk.state_of(FIL) is TradingState.REDUCING
    desk.move()
    assert desk.exchange.position(FIL)[0] == 0


def test_cancel_all_command_is_journaled_and_cancels_only_its_symbols(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.order("f1", FIL, "10", "3.800")
    desk.order("n1", NEAR, "10", "1.100")
    desk.command("cancel_all", FIL)
    assert [(o.symbol, o.client_order_id) for o in desk.exchange.open_orders(None)] == [(NEAR, "n1")]
    (req,) = desk.of(CancelAllRequest)
    assert (req.symbol, req.strategy_id) == (FIL, "operator")
    assert [e for e in desk.journaled() if isinstance(e, CancelAllRequest)] == [req]
    assert desk.risk.state is TradingState.ACTIVE  # cancelling orders does not stop trading


def test_bad_commands_are_denied_as_events(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.command("liquidate")
    desk.command("flatten", "NOPEUSDT")
    codes = [d.code for d in desk.of(RiskDenied)]
    assert codes == ["UNKNOWN_COMMAND", "UNKNOWN_SYMBOL"]
    assert not desk.of(CancelAllRequest) and not desk.of(OrderIntent)


def test_replaced_protection_passes_the_gate_and_joins_the_book(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    protect = desk.risk.commands.replace_protection
    assert protect(stop_template()) is None  # flat: nothing to protect
    desk.order("e1", FIL, "10", "4.100")
    desk.move()
    assert protect(stop_template(Side.BUY)) is None  # would open a short, not close the long
    assert protect(stop_template(trigger="3.5005")) is None  # off the tick grid
    desk.risk.set_state(TradingState.HALTED, "operator halt")
    assert protect(stop_template()) is None
    desk.risk.set_state(TradingState.ACTIVE, "operator resume")
    assert [d.code for d in desk.of(RiskDenied)] == ["NO_POSITION", "NO_POSITION", "PRICE_PRECISION",
                                                      "TRADING_HALTED"]
    placed = protect(stop_template())
    assert placed is not None and placed.client_order_id == "e1-sl-rp"
    assert placed.trigger_price == D("3.500") and placed.close_position
    again = protect(placed)  # a second re-placement numbers on, never repeats an id
    assert again is not None and again.client_order_id == "e1-sl-rp2"
    assert [o.client_order_id for o in desk.exchange.open_orders(FIL)] == ["e1-sl-rp", "e1-sl-rp2"]
    desk.order("x1", FIL, "10", "3.900", side=Side.SELL)  # the position closes: its protection is cancelled
    desk.move()
    assert {c.client_order_id for c in desk.of(CancelRequest)} == {"e1-sl-rp", "e1-sl-rp2"}
    assert desk.exchange.open_orders(FIL) == []


def test_a_restarted_process_never_repeats_a_flatten_or_replaced_stop_id_of_the_journal(tmp_path: Path) -> None:
    first, again = Desk(tmp_path / "a"), Desk(tmp_path / "b")  # two processes of one run, at the same moment
    for desk in (first, again):
        desk.order("e1", FIL, "10", "4.100")
        desk.move()
    first.command("flatten")
    first.risk.commands.replace_protection(stop_template())
    journaled = first.journaled()
    again.risk.commands.restore_ids([e.intent_id for e in journaled if isinstance(e, OrderIntent)] +
                                    [e.client_order_id for e in journaled if isinstance(e, OrderRequest)])
    again.command("flatten")
    again.risk.commands.replace_protection(stop_template())
    ids = [(e.intent_id, e.client_order_id) for e in first.of(OrderRequest) + again.of(OrderRequest)
           if e.strategy_id == "operator" or e.client_order_id.startswith("e1-sl")]
    assert len(ids) == 4 and len({i for i, _ in ids}) == 3 and len({c for _, c in ids}) == 4, ids
