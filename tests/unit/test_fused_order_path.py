"""The backtest's fused order path (issue 17, target 2) against the general one a live run takes.

Each backtest here runs twice on the same klines, once with ``Backtest.fused_orders`` off (every order through
the general risk decision, exchange submit and fill) and once on, and everything a run leaves behind must be
equal: every event published on the bus (with its Decimals' exact digits), the portfolio's orders, trades and
denials, the exchange's whole state (orders, trades, income, wallet, positions), the equity curve and the
risk manager's state changes. A scripted strategy mixes what the short ways take (market entries from flat,
closes) with everything they hand back (stops and targets, limits, flips, adds, reductions, quantities that
round, caps that bind, min-notional denials, guards, liquidations, slippage, isolated margin, two symbols), so
both ways run in one backtest; counters show each path was taken. ``test_a_planted_bug_is_caught`` shows the
comparison fails when the fused path is wrong in a small way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, direct
from kinetic_empire.backtest.direct import DirectFeeds
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import (
    BalanceReason,
    IntentAction,
    MarginType,
    OrderType,
    Side,
    TradingState,
    WorkingType,
)
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.event_factories import (
    new_balance_changed,
    new_order_accepted,
    new_order_filled,
    new_position_changed,
)
from kinetic_empire.core.events import (
    BalanceChanged,
    KlineClosed,
    OrderAccepted,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderRequest,
    PositionChanged,
)
from kinetic_empire.data import KlineFrame
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange, fast_fill
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.exchange.orders import SimOrder
from kinetic_empire.exchange.state import export_state
from kinetic_empire.portfolio import Portfolio
from kinetic_empire.portfolio.trades import TradeBook
from kinetic_empire.risk import RiskConfig, RiskManager, fast_path
from kinetic_empire.risk.exits import ExitsInFlight
from kinetic_empire.risk.fast_path import FastIntents
from kinetic_empire.strategy import Param, Strategy
from kinetic_empire.strategy.registry import StrategyRegistry
from kinetic_empire.strategy.runner import StrategyRunner
from tests.support.risk_fakes import FakeAccount, Harness, all_brackets, all_rules, judged_fast

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000


def _frame(symbol: str, n: int, seed: int, price: float, tick: float, crash_at: int | None = None) -> KlineFrame:
    """A seeded random walk on the tick grid; ``crash_at``: a 25 % fall over 30 klines from there."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.003, n)
    if crash_at is not None:
        returns[crash_at:crash_at + 30] -= 0.0095
    close = price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[price], close[:-1]])
    wiggle = np.abs(rng.normal(0.0, 0.002, (2, n))) * close
    high, low = np.maximum(open_, close) + wiggle[0], np.minimum(open_, close) - wiggle[1]
    open_, high, low, close = (np.round(a / tick) * tick for a in (open_, high, low, close))
    return KlineFrame(symbol, "1m", START + np.arange(n, dtype=np.int64) * MINUTE, open_, high, np.maximum(low, tick),
                      close, np.full(n, 1000.0))  # fmt: skip


class Scripted(Strategy):
    """Seeded random actions of every kind, most of them the plain ones a backtest is made of."""

    name = "scripted"
    timeframe = "1m"
    add_to_position = True
    seed = Param(1, "random seed")
    rate = Param(0.3, "share of klines with an action")
    unit = Param(100.0, "the usual quantity")

    def init(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self.seen: list[Any] = []  # the position as the strategy saw it whenever it acted (compared both ways)

    def on_kline(self, kline: Any) -> None:
        rng = self._rng
        if rng.random() >= self.rate:
            return
        self.seen.append(self.position)
        c = self.close[-1]
        qty = [None, self.unit, self.unit, self.unit, self.unit * 0.3737, self.unit * 1e-4, self.unit * 1e5][
            int(rng.integers(0, 7))]  # sizer, plain, rounding, below min notional, a cap that binds
        tag = "t" if rng.random() < 0.2 else ""
        kind = int(rng.integers(0, 20))
        if kind < 6:
            self.buy(qty, tag=tag)
        elif kind < 9:
            self.sell(qty, tag=tag)
        elif kind < 14:
            self.close_position(tag)
        elif kind == 14:
            self.buy(qty, stop_loss=c * 0.995, take_profit=c * 1.01)
        elif kind == 15:
            self.sell(qty, stop_loss=c * 1.005, take_profit=c * 0.99)
        elif kind == 16:
            self.buy(qty, limit=c * 0.999)
        elif kind == 17:
            self.reduce(0.5)
        elif kind == 18:
            self.sell(qty, limit=c * 1.001, tag=tag)
        else:
            self.close_position()
            self.buy(qty)  # the same kline: a close and an entry


class Reacting(Scripted):
    """Scripted, and acting on some of its fills too (``on_fill``: the fill's event, made for it, and intents that
    leave while the fill is being delivered)."""

    name = "scripted_reacting"

    def on_fill(self, fill: Any) -> None:
        self.seen.append((fill, self.position))
        draw = self._rng.random()
        if draw < 0.15:
            self.close_position("on fill")
        elif draw < 0.25:
            self.buy(self.unit) if self.position.size <= 0 else self.sell(self.unit)


def _config(**over: Any) -> BacktestConfig:
    symbols = over.pop("symbols", ["FILUSDT"])
    name = over.pop("strategy", "scripted")
    also = over.pop("also", [])  # further strategies: (name, symbols, params over this one's)
    risk = {"default_leverage": over.pop("leverage", 2), "sizing": over.pop("sizing", {"method": "fixed_quantity",
                                                                                        "quantity": 100})}
    risk.update(over.pop("risk", {}))
    backtest = {"data": "unused", "initial_balance": over.pop("balance", 10_000), "fees": {"maker": 0.0002,
                "taker": 0.0004}, "funding_rate": 0.0001, **over.pop("backtest", {})}  # fmt: skip
    params = {"seed": over.pop("seed", 1), "rate": over.pop("rate", 0.3), "unit": over.pop("unit", 100.0)}
    assert not over, over
    return BacktestConfig.from_mapping({"backtest": backtest, "risk": risk, "strategies": [
        {"name": name, "symbols": symbols, "timeframe": "1m", "params": params},
        *({"name": n, "symbols": syms, "timeframe": "1m", "params": {**params, **more}} for n, syms, more in also)]})


_FRAMES = {
    "FILUSDT": lambda n, crash: _frame("FILUSDT", n, 7, 5.0, 0.001, crash),
    "BTCUSDT": lambda n, crash: _frame("BTCUSDT", n, 8, 40_000.0, 0.1, crash),
}


@contextmanager
def _counted() -> Iterator[dict[str, int]]:
    """Counts of intents and fills each way took (the comparison means something only if both ran)."""
    counts = {"fast_intents": 0, "fast_flips": 0, "fast_fills": 0, "fast_accepts": 0, "direct_fills": 0,
              "direct_positions": 0}
    entry, close, flip = FastIntents._entry, FastIntents._close, FastIntents.flip
    fill, accept = fast_fill.fill_queued_market, fast_fill.accept_market
    direct_fill, direct_position, direct_settled = DirectFeeds.filled, DirectFeeds.position, DirectFeeds.settled

    def counting_direct_fill(*args: Any) -> bool:
        done = direct_fill(*args)
        counts["direct_fills"] += done
        return done

    def counting_direct_position(*args: Any) -> bool:
        done = direct_position(*args)
        counts["direct_positions"] += done
        return done

    def counting_direct_settled(*args: Any) -> bool:
        done = direct_settled(*args)
        counts["direct_positions"] += done
        return done

    def counting_entry(self: FastIntents, intent: OrderIntent, long: bool) -> Any:
        out = entry(self, intent, long)
        counts["fast_intents"] += out is not None
        return out

    def counting_close(self: FastIntents, intent: OrderIntent) -> Any:
        out = close(self, intent)
        counts["fast_intents"] += out is not None
        return out

    def counting_flip(self: FastIntents, intent: OrderIntent, long: bool) -> Any:
        out = flip(self, intent, long)
        counts["fast_flips"] += out is not None
        return out

    def counting_fill(*args: Any) -> bool:
        done = fill(*args)
        counts["fast_fills"] += done
        return done

    def counting_accept(*args: Any) -> SimOrder:
        counts["fast_accepts"] += 1
        return accept(*args)

    mp = pytest.MonkeyPatch()
    mp.setattr(FastIntents, "_entry", counting_entry)
    mp.setattr(FastIntents, "_close", counting_close)
    mp.setattr(FastIntents, "flip", counting_flip)
    mp.setattr("kinetic_empire.exchange.matching.fill_queued_market", counting_fill)
    mp.setattr("kinetic_empire.exchange.broker.accept_market", counting_accept)
    mp.setattr(DirectFeeds, "filled", counting_direct_fill)
    mp.setattr(DirectFeeds, "position", counting_direct_position)
    mp.setattr(DirectFeeds, "settled", counting_direct_settled)
    try:
        yield counts
    finally:
        mp.undo()


DIRECT = (OrderIntent, OrderRequest, OrderAccepted, OrderFilled, PositionChanged, BalanceChanged)
"""The events the fused path hands straight to their only readers (backtest.direct) instead of publishing."""


def _run(cfg: BacktestConfig, n: int, fused: bool, crash: int | None = None, listen: bool = False) -> dict[str, Any]:
    """Everything the run left behind, as comparable values. ``events``: every event but klines, in order, as
    published, or as the fused path handed it to its readers directly (the event it stands for, recorded where
    it would have been published). ``listen``: a recorder also subscribes to those events, so the fused path
    must publish them; ``heard`` is what it received."""
    events: list[str] = []
    heard: list[str] = []
    publish = EventBus.publish
    init = EventBus.__init__

    def recording(self: EventBus, event: Any, topic: Any = None) -> None:
        if not isinstance(event, KlineClosed):
            events.append(repr(event))
        publish(self, event, topic)

    def listening(self: EventBus, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for kind in DIRECT:
            self.subscribe(kind, lambda e: heard.append(repr(e)))

    def goes_direct(feeds: DirectFeeds, ok: str) -> bool:
        if feeds._changes[0] != feeds._seen:
            feeds._look()
        return getattr(feeds, ok) not in (False, None)

    request, accepted, balance = DirectFeeds.request, DirectFeeds.accepted, DirectFeeds.balance
    intent = DirectFeeds.intent

    def direct_intent(self: DirectFeeds, event: Any) -> None:
        if goes_direct(self, "_intent_ok") and type(event) is OrderIntent:
            events.append(repr(event))
        intent(self, event)
    request_fields = DirectFeeds.request_fields
    filled, position, settled = DirectFeeds.filled, DirectFeeds.position, DirectFeeds.settled

    def direct_request(self: DirectFeeds, r: OrderRequest) -> None:
        if goes_direct(self, "_request_ok"):
            events.append(repr(r))
        request(self, r)

    def direct_request_fields(self: DirectFeeds, intent: OrderIntent, plain: Any, now: int) -> None:
        if goes_direct(self, "_request_ok") and plain[5]:  # (unchecked: handed to request, recorded there)
            events.append(repr(fast_path.request_of(intent, plain, now)))
        request_fields(self, intent, plain, now)

    def direct_accepted(self: DirectFeeds, cid: str, oid: int, sym: str, side: Side, qty: D, ro: bool, ts: int) -> bool:
        if goes_direct(self, "_accepted_ok"):
            events.append(repr(new_order_accepted(cid, oid, sym, side, OrderType.MARKET, qty, None, None, ro, False,
                                                  ts, ts)))  # fmt: skip
        return accepted(self, cid, oid, sym, side, qty, ro, ts)

    def direct_balance(self: DirectFeeds, wallet: D, change: D, ts: int, now: int) -> bool:
        if goes_direct(self, "_balance_ok"):
            events.append(repr(new_balance_changed("USDT", wallet, change, BalanceReason.ORDER, ts, now)))
        return balance(self, wallet, change, ts, now)

    def direct_filled(self: DirectFeeds, o: SimOrder, trade: int, qty: D, price: D, fee: D, pnl: D, status: Any,
                      ts: int, now: int) -> bool:
        if goes_direct(self, "_fill_runners") and not o.client_order_id.startswith("autoclose-"):
            events.append(repr(new_order_filled(o.client_order_id, o.order_id, trade, o.symbol, o.side, o.order_type,
                                                qty, price, fee, pnl, False, status, o.reduce_only, False, ts, now)))
        return filled(self, o, trade, qty, price, fee, pnl, status, ts, now)

    def direct_position(self: DirectFeeds, symbol: str, pos: Any, ts: int, now: int) -> bool:
        if goes_direct(self, "_position_runners"):
            events.append(repr(new_position_changed(symbol, pos.qty, pos.entry, pos.leverage, ts, now)))
        return position(self, symbol, pos, ts, now)

    def direct_settled(self: DirectFeeds, symbol: str, pos: Any, change: D, ts: int, now: int) -> bool:
        both = goes_direct(self, "_position_runners") and goes_direct(self, "_balance_ok")
        if both:
            events.append(repr(new_position_changed(symbol, pos.qty, pos.entry, pos.leverage, ts, now)))
        done = settled(self, symbol, pos, change, ts, now)
        assert done == both
        if done and goes_direct(self, "_balance_ok"):  # (else published, and recorded so)
            wallet = self._exchange.wallet
            events.append(repr(new_balance_changed("USDT", wallet, change, BalanceReason.ORDER, ts, now)))
        return done

    registry = StrategyRegistry()
    registry.add(Scripted, "test")
    registry.add(Reacting, "test")
    symbols = [sym for spec in cfg.strategies for sym in spec.symbols]
    frames = {sym: _FRAMES[sym](n, crash) for sym in symbols}
    mp = pytest.MonkeyPatch()
    mp.setattr(EventBus, "publish", recording)
    mp.setattr(Backtest, "fused_orders", fused)
    mp.setattr(DirectFeeds, "intent", direct_intent)
    mp.setattr(DirectFeeds, "request", direct_request)
    mp.setattr(DirectFeeds, "request_fields", direct_request_fields)
    mp.setattr(DirectFeeds, "accepted", direct_accepted)
    mp.setattr(DirectFeeds, "balance", direct_balance)
    mp.setattr(DirectFeeds, "filled", direct_filled)
    mp.setattr(DirectFeeds, "position", direct_position)
    mp.setattr(DirectFeeds, "settled", direct_settled)
    if listen:
        mp.setattr(EventBus, "__init__", listening)
    try:
        result = Backtest(cfg, registry, frames=frames).run()
    finally:
        mp.undo()
    p = result.portfolio
    return {
        "events": events,
        "heard": heard,
        "wallet": (p.wallet_balance(), p._wallet_ts, p._wallet_val),
        "positions": {sym: p._pos_hist.get(sym) for sym in symbols},
        "open trades": p.open_trades(int(result.timestamps[-1])),
        "orders": p.orders,
        "trades": p.trades,
        "denials": p.denials,
        "exchange": export_state(result.exchange),
        "equity": result.equity.tolist(),
        "states": result.risk.state_changes if result.risk else None,
        "fees": (p.fees_total, p.funding_total, p.liquidation_count),
        "seen": [(r.strategy_id, r.symbol, r.strategy.seen) for r in result.runners],
    }


def _compare(general: dict[str, Any], fused: dict[str, Any]) -> None:
    for key in general:
        if key in ("events", "heard"):
            for i, (a, b) in enumerate(itertools.zip_longest(general[key], fused[key])):
                assert a == b, f"{key[:-1]} {i} differs:\n general {a}\n fused   {b}"
        assert general[key] == fused[key], key


def _same(cfg: BacktestConfig, n: int = 700, crash: int | None = None, listen: bool = False) -> dict[str, int]:
    """The fused run leaves what the general run does; with ``listen`` both have a recorder subscribed to the
    events the fused path could deliver directly, which must then reach it exactly as the general path's do."""
    general = _run(cfg, n, fused=False, crash=crash, listen=listen)
    with _counted() as counts:
        fused = _run(cfg, n, fused=True, crash=crash, listen=listen)
    _compare(general, fused)
    assert len(general["events"]) > 100 and general["trades"], "the run traded too little to compare"
    assert len(general["heard"]) > 100 if listen else not general["heard"]
    return counts


SCENARIOS = {
    "fixed quantity": {},
    "fixed notional (rounded entries)": {"sizing": {"method": "fixed_notional", "notional": 400}},
    "percent of equity (entries the general way)": {"sizing": {"method": "percent_equity", "percent": 20}},
    "slippage": {"backtest": {"slippage_bps": 3}},
    "two symbols, one position at a time": {"symbols": ["FILUSDT", "BTCUSDT"], "unit": 0.01,
                                            "risk": {"guards": {"max_open_positions": 1}}},
    "exposure guard configured": {"risk": {"guards": {"max_symbol_exposure": {"usdt": 700}}}},
    "loss streak, daily loss and drawdown guards": {"risk": {"guards": {
        "loss_streak": {"losses": 2, "cooldown_minutes": 30}, "daily_loss_limit_pct": 3, "max_drawdown_pct": 5}}},
    "isolated margin": {"backtest": {"margin_type": "ISOLATED"}},
    "no max open positions, small balance (margin caps bind)": {"balance": 300,
                                                                "risk": {"guards": {"max_open_positions": None}}},
    "a strategy acting on its fills": {"strategy": "scripted_reacting"},
    "two strategies, each on its symbol (fills reach their symbol's runner)": {
        "strategy": "scripted_reacting", "also": [("scripted", ["BTCUSDT"], {"seed": 5, "unit": 0.01})],
        "risk": {"guards": {"max_open_positions": None}}},
}


@pytest.mark.parametrize("over", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_fused_and_general_paths_leave_the_same_run(over: dict[str, Any]) -> None:
    counts = _same(_config(**dict(over)))
    assert counts["fast_intents"] > 10, counts  # the short ways were taken...
    if "ISOLATED" not in str(over):
        assert counts["fast_fills"] > 10 and counts["fast_accepts"] > 10, counts
        assert counts["direct_fills"] > 10 and counts["direct_positions"] > 10, counts


@pytest.mark.parametrize("name", ["fixed quantity", "loss streak, daily loss and drawdown guards"])
def test_with_another_reader_of_the_direct_events_the_fused_path_publishes_them(name: str) -> None:
    counts = _same(_config(**dict(SCENARIOS[name])), listen=True)
    assert counts["fast_fills"] > 10 and counts["fast_accepts"] > 10, counts


def test_liquidations_with_high_leverage_are_the_same() -> None:
    cfg = _config(leverage=20, sizing={"method": "fixed_notional", "notional": 150_000}, balance=10_000, rate=0.2,
                  risk={"guards": {"max_open_positions": None}})
    general = _run(cfg, 700, fused=False, crash=400)
    assert general["fees"][2] > 0, "no liquidation: the scenario does not test what it says"
    _same(cfg, crash=400)


def test_a_planted_bug_is_caught() -> None:
    """The comparison fails when the fused path is wrong in a small way: here the fill books a position's
    zero realized PnL as ``Decimal(0)`` instead of ``0E-8`` (the same value, other digits in every record)."""
    cfg = _config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast_fill, "_ZERO_MONEY", D(0))
        with pytest.raises(AssertionError, match="differs"):
            _same(cfg, n=400)


def test_a_planted_bug_in_the_fast_decision_is_caught() -> None:
    """... and when the fast decision writes a rounding note differently."""
    cfg = _config(sizing={"method": "fixed_notional", "notional": 400})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast_path, "fmt", lambda value: str(value))
        with pytest.raises(AssertionError, match="differs"):
            _same(cfg, n=400)


_MARKET_ACCEPTED = Portfolio.market_accepted


def _tagless_accepted(self: Portfolio, cid: str, symbol: str, side: Side, quantity: D, ts: int) -> None:
    _MARKET_ACCEPTED(self, cid, symbol, side, quantity, ts)
    self._order_rows[-1] = (*self._order_rows[-1][:-1], "")  # the record's tag dropped


def _funding_first(self: TradeBook, symbol: str, amount: D) -> None:
    self._add_funding(symbol, amount)  # booked before the fills still pending: to the wrong trade


def _wallet_without_history(self: Portfolio, wallet: D, ts: int) -> None:
    self._wallet = wallet  # the change point not recorded


def _swapped_position(size: float, entry: float) -> Any:
    return _POSITION(entry, size)  # the size and the entry price swapped


def _fee_not_totalled(self: Portfolio, cid: str, symbol: str, side: Side, qty: D, price: D, fee: D, pnl: D,
                      status: Any, ts: int) -> None:
    total = self.fees_total
    _MARKET_FILLED(self, cid, symbol, side, qty, price, fee, pnl, status, ts)
    self.fees_total = total


def _untagged_intent(self: DirectFeeds, intent: Any) -> None:
    """``DirectFeeds.intent`` without the portfolio's tag store (``Portfolio._on_intent``)."""
    if self._changes[0] != self._seen:
        self._look()
    if not self._intent_ok or type(intent) is not OrderIntent:
        self._publish(intent)
        return
    self._intents[1](intent)


def _stale_close(self: FastIntents, intent: OrderIntent) -> Any:
    """``FastIntents._close`` with its last-size cache never compared: the first close's answer for every size."""
    s = self._symbols.get(intent.symbol)
    if s is not None and s.last_close is not None:
        s.last_close = (abs(self._account.position(intent.symbol).quantity), s.last_close[1])
    return _CLOSE(self, intent)


_POSITION = direct._position
_CLOSE = FastIntents._close
_MARKET_FILLED = Portfolio.market_filled

PLANTED = {
    "direct intent without its tag": (DirectFeeds, "intent", _untagged_intent),
    "a close's size cache answering for another size": (FastIntents, "_close", _stale_close),
    "fee rounding to 7 places": (fast_fill, "_FEE_Q", D("0.0000001")),
    "direct position with size and entry swapped": (direct, "_position", _swapped_position),
    "direct fill not handed to its strategy's on_fill": (StrategyRunner, "hears_fills", lambda self: False),
    "direct fill's fee not totalled": (Portfolio, "market_filled", _fee_not_totalled),
    "direct position not seen by the risk gate": (RiskManager, "position_changed", lambda self, s, q, now=None: None),
    "direct fill not seen by the exits in flight": (ExitsInFlight, "filled", lambda self, c, q, s: None),
    "accepted row without its tag": (Portfolio, "market_accepted", _tagless_accepted),
    "funding booked before pending fills": (TradeBook, "add_funding", _funding_first),
    "direct balance without its change point": (Portfolio, "wallet_changed", _wallet_without_history),
}


@pytest.mark.parametrize("planted", list(PLANTED.values()), ids=list(PLANTED))
def test_planted_bugs_in_the_direct_feeds_and_lazy_books_are_caught(planted: tuple[Any, str, Any]) -> None:
    owner, name, value = planted
    cfg = _config(seed=4, rate=0.5, strategy="scripted_reacting")
    general = _run(cfg, 500, fused=False)
    assert general["fees"][1], "no funding booked: the lazy book's funding is not tested"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(owner, name, value)
        fused = _run(cfg, 500, fused=True)
    with pytest.raises(AssertionError):
        _compare(general, fused)


# ----------------------------------------------------------------------- the decision, intent by intent


def _intents(symbol: str, price: float) -> Iterator[OrderIntent]:
    n = itertools.count()
    for action in (IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT, IntentAction.CLOSE):
        for qty in (None, D(100), D("37.37"), D("0.001"), D(10) ** 9, D("NaN"), D(-1)):
            yield OrderIntent(intent_id=f"i-{next(n)}", strategy_id="s1", symbol=symbol, action=action, quantity=qty,
                              reference_price=price, ts_event=1, ts_init=1)
    yield OrderIntent(intent_id="i-bad", strategy_id="s1", symbol=symbol, action=IntentAction.OPEN_LONG,
                      reference_price=float("nan"), ts_event=1, ts_init=1)
    yield OrderIntent(intent_id="i-" + "x" * 40, strategy_id="s1", symbol=symbol, action=IntentAction.OPEN_LONG,
                      reference_price=price, ts_event=1, ts_init=1)  # a client id that must be shortened


@pytest.mark.parametrize("sizing", [{"method": "fixed_quantity", "quantity": 100},
                                    {"method": "fixed_notional", "notional": 250},
                                    {"method": "percent_equity", "percent": 10}], ids=lambda s: s["method"])
def test_the_fast_decision_answers_as_the_general_one(sizing: dict[str, Any]) -> None:
    answered = passed = 0
    for wallet, position, state, guards in itertools.product(
        (D(1_000_000), D(150), D(0)), (None, (100, 5.0), (-50, 5.0), (100.05, 5.0)),  # the last off the lot grid
        (None, TradingState.REDUCING, TradingState.HALTED),
        ({}, {"max_open_positions": 1}, {"max_gross_exposure": 2}),
    ):
        account = FakeAccount(wallet)
        if position is not None:
            account.set_position("FILUSDT", *position)
            account.set_position("BTCUSDT", 0.001, 40_000)
        h = Harness({"default_leverage": 3, "sizing": sizing, "guards": guards}, account=account)
        if state is not None:
            h.rm.set_state(state, "test")
        fast = FastIntents(h.rm._decider, account, h.rules, h.brackets, h.rm.config, h.rm._states)
        for intent in _intents("FILUSDT", 5.123):
            quick = fast.decide(intent, 7)
            passed += quick is None
            if quick is not None:
                answered += 1
                assert quick == h.rm._decider.decide(intent, 7), intent
    assert answered > 20 and passed > 20, (answered, passed)


def _around(x: float) -> list[D]:
    """Quantities on both sides of ``x``, near and far, on the lot grid and off it."""
    factors = (0.3, 0.51, 0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1, 1.9, 3.1)
    near = [D(repr(x * f)).quantize(D("0.0001")) for f in factors]
    return [*near, near[5] + D("0.05"), near[5] - D("0.05")]  # (half a lot off the limit)


@pytest.mark.parametrize("lots", [{}, {"market_min_qty": D("1.5"), "market_max_qty": D("40000")}],
                         ids=["FILUSDT", "min above the step"])
@pytest.mark.parametrize("wallet", [D(150), D(10_000), D(10) ** 9])
def test_the_fast_decision_answers_as_the_general_one_at_every_limit(wallet: D, lots: dict[str, D]) -> None:
    """Entries sized on both sides of each limit the short way checks itself (the min notional, the margin the
    wallet allows, the bracket's cap, the max and min quantity, the lot step): wherever it answers, it answers as
    the general decision, and it answers on both sides of the limits it does not hand back."""
    import dataclasses

    account = FakeAccount(wallet)
    h = Harness({"default_leverage": 3}, account=account,
                rules={**all_rules(), "FILUSDT": dataclasses.replace(all_rules()["FILUSDT"], **lots)})
    fast = FastIntents(h.rm._decider, account, h.rules, h.brackets, h.rm.config, h.rm._states)
    rules = h.rules["FILUSDT"]
    cap, rate = h.rm._decider._per_leverage("FILUSDT", h.brackets["FILUSDT"], 3)
    answered = passed = 0
    for price in (5.123, 0.517, 40.0):
        usable = float(wallet) * 0.99
        limits = (float(rules.min_notional) / price, usable / (price * float(rate)), float(cap) / price,
                  float(rules.market_max_qty), float(rules.market_min_qty))
        intents = (OrderIntent(intent_id=f"i-{i}", strategy_id="s1", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                               quantity=qty, reference_price=price, ts_event=1, ts_init=1)
                   for i, qty in enumerate(q for limit in limits for q in _around(limit)))
        a, p = judged_fast(fast, h, intents)
        answered, passed = answered + a, passed + p
    assert answered > 20 and passed > 20, (answered, passed)


# ----------------------------------------------------------------------- the exchange, request by request


def _exchange_run(fused: bool, config: ExchangeConfig, margin: MarginType) -> tuple[list[str], Any]:
    bus = EventBus()
    events: list[str] = []
    bus.subscribe(object, lambda e: events.append(repr(e)))
    clock = ReplayClock(START)
    ex = SimulatedExchange(all_rules(), all_brackets(), clock=clock, emit=bus.publish, config=config,
                           symbols=["FILUSDT"])  # fmt: skip
    if margin is MarginType.ISOLATED:
        ex.set_margin_type("FILUSDT", margin)
    if fused:
        ex.use_fused_orders()
    SimulatedBroker(bus, ex, clock, [("FILUSDT", "1m")])
    seq = itertools.count()

    def levels() -> None:  # the liquidation solve's results (the fused fill solves one book's inline)
        events.append(repr([(b.pos.liq_f, b.watch_low, b.watch_high) for b in ex._books.values()]
                           + [ex._cross_positions]))  # fmt: skip

    def request(side: Side, qty: str, reduce_only: bool = False, cid: str | None = None, **kw: Any) -> None:
        bus.publish(OrderRequest(client_order_id=cid or f"c{next(seq)}", intent_id="i", strategy_id="s",
                                 symbol="FILUSDT", side=side, order_type=kw.pop("order_type", OrderType.MARKET),
                                 quantity=D(qty), reduce_only=reduce_only, rules_checked=True,
                                 ts_event=clock.now_ms(), ts_init=clock.now_ms(), **kw))  # fmt: skip
        levels()

    def kline(i: int, o: float, h: float, lo: float, c: float) -> None:
        clock.advance_to(START + i * MINUTE)
        bus.publish(KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=START + i * MINUTE, open=o, high=h, low=lo,
                                close=c, volume=1.0, ts_event=START + (i + 1) * MINUTE - 1, ts_init=clock.now_ms()),
                    ("FILUSDT", "1m"))  # fmt: skip
        levels()

    kline(0, 5.0, 5.01, 4.99, 5.0)
    request(Side.SELL, "10", reduce_only=True)  # nothing to reduce: -2022
    request(Side.BUY, "100", cid="dup")
    request(Side.BUY, "100", cid="dup")  # the same id while open: dropped
    request(Side.BUY, "9000")  # margin insufficient: -2019
    request(Side.BUY, "10", working_type=WorkingType.MARK_PRICE)  # another shape: the general way
    kline(1, 5.003, 5.02, 4.98, 5.01)
    request(Side.SELL, "250", reduce_only=True)  # more than held: trimmed to the position
    request(Side.BUY, "30")
    kline(2, 5.011, 5.03, 4.99, 5.02)
    request(Side.SELL, "40")  # flips long 30 to short 10
    request(Side.BUY, "5", reduce_only=True)
    kline(3, 4.987, 5.0, 4.95, 4.96)
    request(Side.BUY, "100000000")  # beyond the bracket's cap at 20x: -2027 (or the margin check)
    request(Side.BUY, "5", reduce_only=True)  # closes the short 5
    request(Side.SELL, "7.3")
    request(Side.SELL, "2", reduce_only=True)  # fills together with the entry before it (two queued)
    kline(4, 4.9, 4.95, 4.8, 4.85)
    kline(5, 4.85, 4.9, 4.84, 4.86)
    return events, export_state(ex)


@pytest.mark.parametrize("config", [ExchangeConfig(funding_rate=D(0)), ExchangeConfig(slippage_bps=D(7)),
                                    ExchangeConfig(max_fill_qty={"FILUSDT": D(40)}),
                                    ExchangeConfig(fill_market_immediately=True),
                                    ExchangeConfig(initial_balance=D(300))],
                         ids=["plain", "slippage", "fill cap", "immediate fills", "small wallet"])
@pytest.mark.parametrize("margin", [MarginType.CROSSED, MarginType.ISOLATED], ids=lambda m: m.value)
def test_the_fused_exchange_answers_as_the_general_one(config: ExchangeConfig, margin: MarginType) -> None:
    general = _exchange_run(False, config, margin)
    fused = _exchange_run(True, config, margin)
    assert len(general[0]) > 20
    for a, b in itertools.zip_longest(general[0], fused[0]):
        assert a == b
    assert general[1] == fused[1]


def test_a_fused_market_order_is_the_order_submit_makes() -> None:
    made = fast_fill.new_market_order(7, "c7", "FILUSDT", Side.SELL, D("12.5"), True, 1234)
    expected = SimOrder(order_id=7, client_order_id="c7", symbol="FILUSDT", side=Side.SELL, order_type=OrderType.MARKET,
                        quantity=D("12.5"), price=None, trigger_price=None, time_in_force=None, reduce_only=True,
                        close_position=False, working_type=WorkingType.CONTRACT_PRICE, is_algo=False, time=1234)
    for name in (*SimOrder.__slots__, "avg_price"):  # (avg_price: a property over the slot _avg)
        assert getattr(made, name) == getattr(expected, name), name
        assert type(getattr(made, name)) is type(getattr(expected, name)), name


def test_a_risk_config_with_guards_keeps_entries_on_the_general_way() -> None:
    cfg = RiskConfig.from_mapping({"guards": {"min_liquidation_distance_pct": 5}})
    h = Harness(cfg)
    fast = FastIntents(h.rm._decider, h.account, h.rules, h.brackets, cfg, h.rm._states)
    intent = OrderIntent(intent_id="g", strategy_id="s1", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                         reference_price=5.0, ts_event=1, ts_init=1)
    assert fast.decide(intent, 1) is None


@pytest.mark.parametrize("tick, min_price", [("0.001", "0.001"), ("0.1", "0.1"), ("0.0010", "0.001"), ("1E+1", "10"),
                                             ("0.005", "0.005"), ("0.01", "0.005"), ("0.001", "0"), ("1", "0"),
                                             ("0.0010", "0.0480"), ("0.010", "6.600"), ("0.000010", "0.002440"),
                                             ("10", "10"), ("0.0010", "0.0015"), ("0.0020", "0.002"), ("0.10", "0")])
def test_a_fill_price_on_the_grid_is_the_one_rounding_gives(tick: str, min_price: str) -> None:
    """The fused fill skips ``round_price_nearest`` for an open already on a plain tick grid: every open, on the
    grid or off it, by a half tick or by float noise, gets the general fill price, digit for digit."""
    import dataclasses

    base = all_rules()["FILUSDT"]
    rules = dataclasses.replace(base, tick_size=D(tick), min_price=D(min_price))
    ex = SimulatedExchange({"FILUSDT": rules}, all_brackets(), clock=ReplayClock(START), emit=lambda e: None,
                           symbols=["FILUSDT"])  # fmt: skip
    book = ex.book("FILUSDT")
    memo = fast_fill.FusedState(D(0))
    rng = np.random.default_rng(3)
    step = float(D(tick))
    opens = [round(x / step) * step for x in rng.uniform(0.5, 5e4, 400)]  # on the grid, as floats make it
    opens += [x + step / 2 for x in opens[:100]] + [x * (1 + 1e-12) for x in opens[:100]]  # half ticks, float noise
    opens += [x + 10.0 ** D(tick).as_tuple().exponent for x in opens[:100]]  # the tick's last digit, off its grid
    opens += list(rng.uniform(0, 99, 100))
    opens += [5.0, 0.005, 0.015, 10.0, 25.0, 1e-9]
    for at in opens:
        for buy in (True, False):
            general = ex._taker_price(book, Side.BUY if buy else Side.SELL, at)
            fused = memo.taker_price(book, buy, at)
            assert repr(fused) == repr(general), (tick, min_price, at)


def test_fills_reach_the_strategies_that_watch_them() -> None:
    """The scenarios above mean something: a reacting strategy saw fills (the events made for it) and acted on
    some, and in the two-strategy run both symbols traded."""
    cfg = _config(**dict(SCENARIOS["two strategies, each on its symbol (fills reach their symbol's runner)"]))
    run = _run(cfg, 700, fused=True)
    reacting, plain = run["seen"]
    fills = [x for x in reacting[2] if isinstance(x, tuple)]
    assert len(fills) > 20 and all(isinstance(f, OrderFilled) and f.symbol == "FILUSDT" for f, _p in fills)
    assert any("on fill" in repr(r) for r in run["orders"]), "no order sent from on_fill"
    assert {t.symbol for t in run["trades"]} == {"FILUSDT", "BTCUSDT"} and plain[2]


def _boom(*_args: Any) -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("reader", ["portfolio", "risk gate", "risk gate's position", "strategy"])
def test_a_reader_failing_on_a_fill_stops_the_run_as_the_bus_would(reader: str) -> None:
    """Handed over directly, a fill whose reader fails stops the run with the error the bus raises (the handler's
    name and the event), or the strategy's own error."""
    cfg = _config(strategy="scripted_reacting")
    errors = []
    for fused in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            if reader == "portfolio":
                mp.setattr(Portfolio, "_on_position", _boom)
                mp.setattr(Portfolio, "position_changed", _boom)
            elif reader == "risk gate's position":
                mp.setattr(RiskManager, "_on_position", _boom)
                mp.setattr(RiskManager, "position_changed", _boom)
            elif reader == "risk gate":
                mp.setattr(RiskManager, "_on_filled", _boom)
                mp.setattr(RiskManager, "fills_need_events", lambda self: True)  # (the bus's handler is then called)
            else:
                mp.setattr(Reacting, "on_fill", _boom)
            with pytest.raises(Exception) as caught:
                _run(cfg, 300, fused)
        errors.append((type(caught.value).__name__, str(caught.value)))
    assert errors[0] == errors[1]
    assert "boom" in errors[0][1] and ("Filled" in errors[0][1] or "PositionChanged" in errors[0][1]), errors[0]


@pytest.mark.parametrize("checked", [True, False])
def test_a_request_the_rules_did_not_pass_is_sent_the_general_way(checked: bool) -> None:
    """The direct delivery hands the exchange's fused acceptance only requests the gate checked against the rules;
    an unchecked one (a close whose size fails ``check_market_order``) goes through ``submit``, which checks it: here
    a quantity off the lot step is accepted only when stamped as checked."""
    bus = EventBus()
    clock = ReplayClock(START)
    rejected: list[Any] = []
    bus.subscribe(OrderRejected, rejected.append)  # (a reader of requests or acceptances would have them published)
    ex = SimulatedExchange(all_rules(), all_brackets(), clock=clock, emit=bus.publish, symbols=["FILUSDT"])
    ex.use_fused_orders()
    portfolio = Portfolio(bus, D(10_000))
    risk = RiskManager(bus, clock, portfolio, all_rules(), all_brackets(), RiskConfig.from_mapping({}),
                       fee_rate_taker=D("0.0004"), fee_rate_maker=D("0.0002"))  # fmt: skip
    risk.use_fast_path()
    DirectFeeds(bus, portfolio, risk, SimulatedBroker(bus, ex, clock, [("FILUSDT", "1m")])).attach(ex)
    intent = OrderIntent(intent_id="i-1", strategy_id="s1", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                         reference_price=5.0, ts_event=START, ts_init=START)
    risk._send_plain(intent, ("i-1-e", Side.BUY, D("10.05"), False, (), checked), START)
    assert [o.client_order_id for o in ex._orders.values()] == (["i-1-e"] if checked else [])
    assert [(r.client_order_id, r.code) for r in rejected] == ([] if checked else [("i-1-e", -1111)])
    assert [r.status for r in portfolio.orders] == ["NEW" if checked else "REJECTED"]


@pytest.mark.parametrize("leverage", [1, 3, 20])
@pytest.mark.parametrize("held", [None, "30", "-30"])
def test_the_fused_margin_check_answers_as_the_general_one_at_its_limit(leverage: int, held: str | None) -> None:
    """Entries sized on both sides of what the wallet allows (the margin with and without the fee, and the
    bracket's cap), from flat and onto a position: the fused acceptance accepts or refuses each as ``submit``."""
    answers: dict[bool, list[Any]] = {}
    price = 5.123
    room = 1000 * leverage / price  # the quantity the wallet's margin covers, before the fee
    sizes = [D(repr(room * f)).quantize(D("0.1")) for f in (0.5, 0.99, 0.9993, 0.9995, 0.9997, 1.0, 1.0004, 1.01)]
    sizes += [D(10) ** 7, D("1E+6")]
    for fused in (False, True):
        out = answers[fused] = []
        for qty in sizes:
            clock = ReplayClock(START)
            ex = SimulatedExchange(all_rules(), all_brackets(), clock=clock, emit=lambda e: None, symbols=["FILUSDT"],
                                   config=ExchangeConfig(initial_balance=D(1000)))  # fmt: skip
            ex.set_leverage("FILUSDT", leverage)
            ex.use_fused_orders()
            ex.on_bar("FILUSDT", START, price, price, price, price)
            if held is not None:
                ex.submit(symbol="FILUSDT", side=Side.BUY if held[0] != "-" else Side.SELL,
                          order_type=OrderType.MARKET, quantity=abs(D(held)))  # fmt: skip
                ex.on_bar("FILUSDT", START + MINUTE, price, price, price, price)
            try:
                if fused:
                    order = fast_fill.accept_market(ex, ex._fused, "FILUSDT", Side.BUY, qty, False, "c")  # type: ignore[arg-type]
                else:
                    order = ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=qty,
                                      client_order_id="c", rules_checked=True)  # fmt: skip
                out.append(("accepted", qty, order.quantity))
            except ExchangeError as exc:
                out.append((exc.code, qty))
    assert answers[True] == answers[False]
    codes = {a[0] for a in answers[False]}
    assert "accepted" in codes and -2019 in codes, codes  # both sides of the limit


OVERRIDABLE = [(Portfolio, "_on_intent"), (RiskManager, "on_intent"), (Portfolio, "_on_request"),
               (SimulatedBroker, "on_request"), (Portfolio, "_on_accepted"), (Portfolio, "_on_filled"),
               (Portfolio, "_on_position"), (Portfolio, "_on_balance"), (RiskManager, "_on_position")]


@pytest.mark.parametrize("owner, name", OVERRIDABLE, ids=[f"{o.__name__}.{n}" for o, n in OVERRIDABLE])
def test_an_overridden_handler_hears_every_event_on_the_fused_path(owner: type, name: str) -> None:
    """A bus handler patched (or overridden in a subclass) is not what its field-taking copy does: the fused
    path must publish its events so the override runs, as often as on the general path."""
    original = getattr(owner, name)
    cfg = _config(seed=4, rate=0.5)

    def calls(fused: bool) -> int:
        seen = [0]

        def counting(self: Any, event: Any) -> None:
            seen[0] += 1
            original(self, event)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(owner, name, counting)
            _run(cfg, 400, fused=fused)
        return seen[0]

    general = calls(False)
    assert general > 10
    assert calls(True) == general


def test_an_overridden_market_request_is_called_on_the_fused_path() -> None:
    """The direct request calls what ``SimulatedBroker.market_request`` calls while it is the broker's own; a
    patched (or overridden) one is called instead, for every plain request, and the run is the same."""
    original = SimulatedBroker.market_request
    seen = [0]

    def counting(self: SimulatedBroker, *args: Any) -> None:
        seen[0] += 1
        original(self, *args)

    cfg = _config(seed=4, rate=0.5)
    general = _run(cfg, 400, fused=False)
    with _counted() as counts, pytest.MonkeyPatch.context() as mp:
        mp.setattr(SimulatedBroker, "market_request", counting)
        fused = _run(cfg, 400, fused=True)
    _compare(general, fused)
    # (every checked plain request: one per fast entry or close, two per flip)
    assert 10 < seen[0] <= counts["fast_intents"] + 2 * counts["fast_flips"], (seen, counts)
