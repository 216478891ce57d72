"""No unprotected position: the guard keeps a position's stop live through the real risk manager and gate,
closes at market when the venue says the price is through the trigger (-2021), retries other refusals with a
backoff for as long as the position is open, and raises (once) and clears the unprotected_position alert.

Time is a ManualClock: the bound, the backoff and the guard's ticks move only when the test moves them."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.enums import IntentAction, OrderStatus, OrderType, Side, TradingState
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.core.events import (
    Alert,
    Note,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderRequest,
    RiskDenied,
)
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import Journal, read_events
from kinetic_empire.live.resume import JournalView
from kinetic_empire.risk.guard import ALERT_KIND, SOURCE, WOULD_TRIGGER, ProtectionGuard
from tests.support.risk_fakes import FakeAccount, Harness, only_request

FIL = "FILUSDT"
D = Decimal
CONFIG = {"sizing": {"method": "fixed_notional", "notional": 100}}
WITHIN = 10.0


class Desk:
    """The real risk manager (and its commands) on a bus with a journal; the guard on a ManualClock timer;
    the test plays the venue: it answers each order request with an acceptance, a rejection or a fill."""

    def __init__(self, tmp: Path, account: FakeAccount | None = None, name: str = "journal.sqlite") -> None:
        self.h = Harness(CONFIG, account=account)
        self.bus = self.h.bus
        self.journal = Journal(tmp / name)
        self.journal.attach(self.bus)
        self.timer = ManualClock(0)
        self.guard = ProtectionGuard(self.bus.publish, self.h.rm.commands, self.h.clock, self.timer, within_s=WITHIN)
        self.guard.subscribe(self.bus)
        self.sent: list[tuple[float, OrderRequest]] = []  # (timer time, request)
        self.bus.subscribe(OrderRequest, lambda r: self.sent.append((self.timer.monotonic(), r)))
        self.answer: Callable[[OrderRequest], None] | None = None  # the venue's automatic reply, if any
        self.bus.subscribe(OrderRequest, self._auto)
        self._order_id = 0

    def _auto(self, r: OrderRequest) -> None:
        if self.answer is not None and r.order_type is OrderType.STOP_MARKET:
            self.answer(r)

    # ------------------------------------------------------------------ the venue's answers
    def _next_id(self) -> int:
        self._order_id += 1
        return self._order_id

    def accept(self, r: OrderRequest) -> None:
        now = self.h.clock.now_ms()
        self.bus.publish(OrderAccepted(client_order_id=r.client_order_id, order_id=self._next_id(), symbol=r.symbol,
                                       side=r.side, order_type=r.order_type, quantity=r.quantity, price=r.price,
                                       trigger_price=r.trigger_price, reduce_only=r.reduce_only,
                                       close_position=r.close_position, ts_event=now, ts_init=now))

    def reject(self, r: OrderRequest, code: int, reason: str) -> None:
        now = self.h.clock.now_ms()
        self.bus.publish(OrderRejected(client_order_id=r.client_order_id, symbol=r.symbol, code=code, reason=reason,
                                       ts_event=now, ts_init=now))

    def cancel(self, r: OrderRequest) -> None:
        now = self.h.clock.now_ms()
        self.bus.publish(OrderCanceled(client_order_id=r.client_order_id, order_id=0, symbol=r.symbol,
                                       reason="canceled", ts_event=now, ts_init=now))

    def fill(self, r: OrderRequest, price: str, qty: Decimal, position: str) -> None:
        now = self.h.clock.now_ms()
        self.bus.publish(OrderFilled(client_order_id=r.client_order_id, order_id=self._next_id(), trade_id=now,
                                     symbol=r.symbol, side=r.side, order_type=r.order_type, quantity=qty,
                                     price=D(price), commission=D(0), realized_pnl=D(0), is_maker=False,
                                     status=OrderStatus.FILLED, reduce_only=r.reduce_only, ts_event=now, ts_init=now))
        self.h.position_changed(r.symbol, position, price)

    # ------------------------------------------------------------------ shortcuts
    def open_long(self, intent_id: str = "s1-1") -> tuple[OrderRequest, OrderRequest]:
        """A 100 USDT FIL long at 3.0 whose strategy asked for a stop at 2.9: (entry, stop request)."""
        entry = only_request(self.h.intent(IntentAction.OPEN_LONG, FIL, 3.0, stop_loss=2.9, intent_id=intent_id))
        assert entry.quantity is not None
        self.fill(entry, "3.0", entry.quantity, str(entry.quantity))
        return entry, self.stops()[-1]

    def stops(self) -> list[OrderRequest]:
        return [r for _t, r in self.sent if r.order_type is OrderType.STOP_MARKET]

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.h.events if isinstance(e, cls)]

    def alerts(self) -> list[Alert]:
        return [a for a in self.of(Alert) if a.kind == ALERT_KIND]

    async def tick(self, seconds: float) -> None:
        await self.timer.advance(seconds)


def run(desk_body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(desk_body())


async def started(desk: Desk) -> asyncio.Task[None]:
    """The guard's timer loop, asleep on the ManualClock before the test moves time."""
    task = asyncio.get_running_loop().create_task(desk.guard.run())
    while desk.timer.sleepers < 1:
        await asyncio.sleep(0)
    return task


# --------------------------------------------------------------------------------------------- -2021


def test_a_stop_refused_as_already_triggered_closes_the_position_at_market_reduce_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        entry, stop = desk.open_long()
        qty = entry.quantity
        assert stop.trigger_price == D("2.900") and stop.close_position
        desk.reject(stop, WOULD_TRIGGER, "Order would immediately trigger.")
        (close,) = [r for _t, r in desk.sent if r.strategy_id == SOURCE]  # at once, in the rejection's handling
        assert (close.symbol, close.side, close.order_type, close.quantity, close.reduce_only) == (
            FIL, Side.SELL, OrderType.MARKET, qty, True)
        (intent,) = [i for i in desk.of(OrderIntent) if i.strategy_id == SOURCE]
        assert intent.action is IntentAction.CLOSE and close.intent_id == intent.intent_id
        assert "PROTECTION_BREACHED" in intent.tag and "-2021" in intent.tag
        (note,) = [n for n in desk.of(Note) if n.topic == SOURCE]
        assert note.data["code"] == WOULD_TRIGGER and note.data["client_order_id"] == stop.client_order_id
        for _ in range(16):  # the close is in flight (8 s, inside the bound): no stop re-placed, no second close
            await desk.tick(0.5)
        assert len(desk.stops()) == 1 and len([r for _t, r in desk.sent if r.strategy_id == SOURCE]) == 1
        desk.fill(close, "2.85", qty, "0")
        for _ in range(40):  # flat: nothing more, ever
            await desk.tick(0.5)
        assert len(desk.sent) == 3 and desk.alerts() == [] and desk.guard.unprotected() == {}
        desk.journal.flush()
        journaled = list(read_events(desk.journal.path))  # the cause, the intent and the order: all journaled
        assert note in journaled and intent in journaled and close in journaled  # (order: the live test)
        task.cancel()

    with caplog.at_level(logging.DEBUG, logger="kinetic_empire.risk.guard"):
        run(body)
    assert len([r for r in caplog.records if "PROTECTION_BREACHED" in r.getMessage()]) == 1


def test_a_close_the_gate_denies_is_retried_and_alerted(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        _entry, stop = desk.open_long()
        desk.h.rm.set_state(TradingState.HALTED, "operator halt")  # a halt refuses closes too
        desk.reject(stop, WOULD_TRIGGER, "Order would immediately trigger.")
        assert [d.code for d in desk.of(RiskDenied)] == ["TRADING_HALTED"]
        await desk.tick(WITHIN)
        (alert,) = desk.alerts()
        assert alert.severity == "critical" and alert.symbol == FIL and not alert.cleared
        desk.h.rm.set_state(TradingState.ACTIVE, "operator resume")
        desk.answer = lambda r: desk.reject(r, WOULD_TRIGGER, "Order would immediately trigger.")
        await desk.tick(5.0)  # the retried stop is refused again: now the close passes the gate
        closes = [r for _t, r in desk.sent if r.strategy_id == SOURCE]
        assert len(closes) == 1 and closes[0].reduce_only
        desk.fill(closes[0], "2.85", closes[0].quantity or D(0), "0")
        assert [a.cleared for a in desk.alerts()] == [False, True]
        task.cancel()

    run(body)


# ------------------------------------------------------------------------------------- other refusals


def test_a_stop_refused_for_another_reason_is_retried_with_backoff_until_accepted_and_alerted_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        desk.answer = lambda r: desk.reject(r, -4045, "Reach max stop order limit.")
        _entry, first = desk.open_long()
        for _ in range(60):  # 30 s
            await desk.tick(0.5)
        times = [t for t, r in desk.sent if r.order_type is OrderType.STOP_MARKET]
        assert times[:7] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 13.0], times  # at once, then doubling, capped at 5 s
        assert all(b - a <= 5.0 for a, b in itertools.pairwise(times)) and times[-1] >= 28.0
        (alert,) = desk.alerts()  # once, when the bound passed
        assert alert.ts_event == desk.h.clock.now_ms() and "without a live stop for 10.0 s" in alert.message
        assert "-4045" in alert.message
        ids = [r.client_order_id for r in desk.stops()]
        assert len(set(ids)) == len(ids) and ids[1:3] == [f"{first.client_order_id}-rp",
                                                            f"{first.client_order_id}-rp2"]
        desk.answer = desk.accept
        await desk.tick(5.0)
        assert [a.cleared for a in desk.alerts()] == [False, True]
        n = len(desk.sent)
        for _ in range(20):  # protected: retrying stops
            await desk.tick(0.5)
        assert len(desk.sent) == n and desk.guard.unprotected() == {}
        assert not [r for _t, r in desk.sent if r.strategy_id == SOURCE]  # never closed for a plain refusal
        task.cancel()

    with caplog.at_level(logging.DEBUG, logger="kinetic_empire.risk.guard"):
        run(body)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING", "ERROR", "WARNING"], [r.getMessage() for r in loud]


def test_a_stop_cancelled_on_the_venue_is_replaced_within_one_tick(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        _entry, stop = desk.open_long()
        desk.accept(stop)
        await desk.tick(3.0)
        assert len(desk.stops()) == 1 and desk.guard.unprotected() == {}
        desk.cancel(stop)  # someone cancels it on the venue
        assert FIL in desk.guard.unprotected()
        await desk.tick(desk.guard.tick_s)
        again = desk.stops()[-1]
        assert again.client_order_id == f"{stop.client_order_id}-rp" and again.trigger_price == stop.trigger_price
        desk.accept(again)
        await desk.tick(30.0)
        assert len(desk.stops()) == 2 and desk.alerts() == []
        task.cancel()

    run(body)


def test_a_triggered_stop_and_an_entry_without_a_stop_place_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        entry, stop = desk.open_long()
        desk.accept(stop)
        assert entry.quantity is not None
        desk.fill(stop, "2.9", entry.quantity, "0")  # the stop did its job
        await desk.tick(30.0)
        plain = only_request(desk.h.intent(IntentAction.OPEN_LONG, FIL, 3.0, intent_id="s1-2"))  # no stop asked
        assert plain.quantity is not None
        desk.fill(plain, "3.0", plain.quantity, str(plain.quantity))
        await desk.tick(30.0)
        assert len(desk.stops()) == 1 and desk.alerts() == [] and desk.guard.unprotected() == {}
        task.cancel()

    run(body)


# ------------------------------------------------------------------------------------------ resume


def test_a_stop_cancelled_while_the_engine_is_down_is_replaced_at_resume_under_a_new_id(tmp_path: Path) -> None:
    async def body() -> None:
        first = Desk(tmp_path)
        _entry, stop = first.open_long()
        first.accept(stop)
        first.cancel(stop)
        first.guard.check()  # re-placed in the first process: -rp is taken
        (rp,) = first.stops()[1:]
        first.accept(rp)
        assert rp.client_order_id.endswith("-rp")
        first.journal.flush()
        first.journal.close()  # the process dies; while it is down, the stop is cancelled on the venue
        view = JournalView.load(first.journal.path, {})
        account = FakeAccount()
        account.set_position(FIL, view.positions[FIL], "3.0")
        again = Desk(tmp_path, account=account, name="journal.sqlite")
        again.h.rm.commands.restore_ids([*view.requests, *view.intents])
        again.guard.restore(view.requests.values(), accepted=view.accepted, terminal=view.terminal,
                            filled=view.filled)
        again.h.position_changed(FIL, view.positions[FIL], "3.0")  # the reconciliation: the venue's position,
        assert again.guard.unprotected() == {}  # with the stop the journal believes live,
        again.cancel(rp)  # which the venue says was cancelled
        actions = again.guard.check()  # what the reconciler asks right after its REST pass
        (new,) = again.stops()
        assert [a.action for a in actions] == [f"re-placed as {new.client_order_id}"]
        assert new.client_order_id == f"{stop.client_order_id}-rp2"  # never a journaled id again
        assert new.trigger_price == stop.trigger_price and new.intent_id == stop.intent_id
        again.journal.flush()
        requested = [r.client_order_id for r in read_events(again.journal.path, ("OrderRequest",))]
        assert len(requested) == len(set(requested)) and new.client_order_id in requested

    run(body)


def test_the_bound_is_a_strict_config_value() -> None:
    base = {"strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m"}]}
    assert LiveConfig.from_mapping(base).protect_within_s == 10.0
    assert LiveConfig.from_mapping({**base, "live": {"protect_within_s": 3}}).protect_within_s == 3.0
    with pytest.raises(ConfigError, match=r"live\.protect_within_s"):
        LiveConfig.from_mapping({**base, "live": {"protect_within_s": 0}})


def test_a_position_closed_while_the_engine_was_down_is_flat_at_resume_not_unprotected(tmp_path: Path) -> None:
    async def body() -> None:
        first = Desk(tmp_path)
        _entry, stop = first.open_long()
        first.accept(stop)
        first.journal.flush()
        first.journal.close()  # down; the stop triggers meanwhile: the venue is flat
        view = JournalView.load(first.journal.path, {})
        again = Desk(tmp_path)
        again.h.rm.commands.restore_ids([*view.requests, *view.intents])
        again.guard.restore(view.requests.values(), accepted=view.accepted, terminal=view.terminal,
                            filled=view.filled)
        task = await started(again)
        again.cancel(stop)  # the reconciliation: the stop is final, and no position (no PositionChanged)
        assert again.guard.check() == []
        await again.tick(3 * WITHIN)
        assert again.sent == [] and again.alerts() == [] and not again.of(RiskDenied)
        task.cancel()

    run(body)


# ------------------------------------------------------------------------------------ closes in flight


def test_a_flatten_cancelling_the_stop_and_closing_finds_no_stop_re_placed(tmp_path: Path) -> None:
    """Shutdown's flatten: cancel-all takes the stop off, a reduce-only market close is in flight; the guard must
    not put the stop back (it would outlive the position as an orphan)."""
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        entry, stop = desk.open_long()
        desk.accept(stop)
        (intent_id,) = desk.h.rm.commands.flatten([FIL], source="shutdown", cause="shutdown policy flatten")
        (close,) = [r for _t, r in desk.sent if r.intent_id == intent_id]
        assert close.order_type is OrderType.MARKET and close.reduce_only
        desk.cancel(stop)  # the venue's answer to the cancel-all
        for _ in range(8):  # 4 s with the close unanswered: inside the bound, no stop re-placed
            await desk.tick(0.5)
        assert desk.stops() == [stop]
        desk.accept(close)
        assert entry.quantity is not None
        desk.fill(close, "2.95", entry.quantity, "0")
        await desk.tick(3 * WITHIN)
        assert desk.stops() == [stop] and desk.alerts() == [] and desk.guard.unprotected() == {}
        task.cancel()

    run(body)


def test_a_close_that_fails_with_the_position_open_puts_the_stop_back(tmp_path: Path) -> None:
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        _entry, stop = desk.open_long()
        desk.accept(stop)
        (intent_id,) = desk.h.rm.commands.flatten([FIL], source="operator", cause="flatten FIL")
        (close,) = [r for _t, r in desk.sent if r.intent_id == intent_id]
        desk.cancel(stop)
        await desk.tick(2.0)
        assert desk.stops() == [stop]
        desk.reject(close, -2022, "ReduceOnly Order is rejected.")  # the position is still open
        await desk.tick(desk.guard.tick_s)
        again = desk.stops()[-1]
        assert again.client_order_id == f"{stop.client_order_id}-rp" and again.trigger_price == stop.trigger_price
        task.cancel()

    run(body)


def test_a_resting_reduce_only_limit_exit_does_not_pause_the_stop(tmp_path: Path) -> None:
    """Only a market close is a close in flight: a take-profit limit may rest for hours, the stop stays wanted."""
    async def body() -> None:
        desk = Desk(tmp_path)
        task = await started(desk)
        entry, stop = desk.open_long()
        desk.accept(stop)
        now = desk.h.clock.now_ms()
        desk.bus.publish(OrderRequest(client_order_id="s1-tp-limit", intent_id="s1-x", strategy_id="s1", symbol=FIL,
                                      side=Side.SELL, order_type=OrderType.LIMIT, quantity=entry.quantity,
                                      price=D("3.300"), reduce_only=True, ts_event=now, ts_init=now))
        desk.cancel(stop)
        await desk.tick(desk.guard.tick_s)
        assert len(desk.stops()) == 2 and desk.stops()[-1].client_order_id == f"{stop.client_order_id}-rp"
        task.cancel()

    run(body)
