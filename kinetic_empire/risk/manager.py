"""The risk manager: every strategy intent becomes exchange-valid order requests or one denial.

The same object sits between strategies and execution in backtests, sandbox paper runs and live
runs. It is the gate and the one place that listens to the bus for risk; the work is done by one
part per concern, and the handlers here show in which order they react to each event:

- :mod:`.decision` turns an intent into order requests or a Denial (sizing, leverage, exchange
  rules, entry guards);
- :mod:`.protection` places the stop-loss and take-profit when an entry fills and cancels them
  when the position is flat;
- :mod:`.watch` follows equity (daily loss, drawdown) and loss streaks, latching trading states;
- :mod:`.state` adds the states up (operator, latches, pauses, cooldowns) and announces changes.

It listens only for what it must: intents, fills and order terminal events (protection and loss
streaks), position and balance changes (flat detection, daily loss, drawdown), and closed klines
only when a configured rule needs an ATR.

Cost: nothing here runs per kline unless an ATR is configured (volatility_target sizing or the
ATR liquidation-distance guard); then the ATR book itself is subscribed to KlineClosed and updates a
Wilder ATR with a few float operations (about 0.4 us per kline). Decimal arithmetic runs only when
an intent or a fill arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..core.account import AccountView
from ..core.bus import EventBus
from ..core.clock import Clock, ReplayClock
from ..core.enums import IntentAction, TradingState
from ..core.events import (
    BalanceChanged,
    KlineClosed,
    Liquidated,
    OperatorCommand,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderRequest,
    PositionChanged,
    ProtectionIntent,
    RiskDenied,
    TargetPositionIntent,
    TradingStateChanged,
)
from ..core.rules import LeverageBrackets, SymbolRules
from .atr import AtrBook
from .commands import RiskCommands
from .config import RiskConfig
from .decision import IntentDecider
from .exits import ExitsInFlight
from .fast_path import FastIntents, Plain, request_of
from .guards import Denial
from .moves import target_intent
from .protection import PendingEntry, ProtectiveOrders
from .state import TradingStates
from .unanswered import UnansweredEntries
from .watch import EquityWatch, LossStreak

_OPEN_LONG, _OPEN_SHORT, _CLOSE = IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT, IntentAction.CLOSE
_UNASKED: Any = ("not asked",)  # on_intent: the fast path was not asked (its answer is a Plain or None)


class RiskManager:
    """Sizing, leverage, exchange rules and account guards between strategies and execution."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        account: AccountView,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        config: RiskConfig,
        *,
        fee_rate_taker: Decimal,
        fee_rate_maker: Decimal,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._replay: ReplayClock | None = clock if type(clock) is ReplayClock else None
        self._account = account
        self._rules = rules
        self._brackets = brackets
        self.config = config
        self.fee_taker = Decimal(fee_rate_taker)
        self.fee_maker = Decimal(fee_rate_maker)
        config.validate(rules, brackets)  # explicitly configured symbols fail at start-up
        self.state_changes: list[TradingStateChanged] = []  # for reports: every switch with its cause
        self._states = TradingStates(config.state, config.symbol_states, self._publish_state)
        needs = config.atr_needs()
        self._atr: AtrBook | None = AtrBook(needs) if needs else None
        self._decider = IntentDecider(
            account, rules, brackets, config, self._states, self._atr, fee_taker=self.fee_taker
        )
        self._fast: FastIntents | None = None  # see use_fast_path
        self._exits = ExitsInFlight(bus)
        self._send: Callable[[OrderRequest], None] = bus.publish  # how requests leave the gate (send_requests_with)
        self._send_fields: Callable[[OrderIntent, Plain, int], None] | None = None  # and plain ones, as fields
        self._protection = ProtectiveOrders(bus, clock, account, rules, self._exits)
        self._equity = EquityWatch(account, config.guards, self._states)
        self._unanswered = UnansweredEntries(bus)
        streak = config.guards.loss_streak
        self._streak: LossStreak | None = LossStreak(streak, self._states) if streak is not None else None

        bus.subscribe(OrderIntent, self.on_intent)
        bus.subscribe(OrderFilled, self._on_filled)
        for terminal in (OrderCanceled, OrderExpired, OrderRejected):
            bus.subscribe(terminal, self._protection.on_terminal)
        bus.subscribe(PositionChanged, self._on_position)
        bus.subscribe(BalanceChanged, self._on_balance)
        if self._streak is not None:
            bus.subscribe(Liquidated, self._streak.on_liquidated)
        if self._atr is not None:  # the only per-kline work, and only when a rule needs an ATR
            bus.subscribe(KlineClosed, self._atr.on_kline)
        self._states.announce_initial("config")
        # protect, flatten, cancel all: reconciliation, shutdown and operators go through the same gate
        self.commands = RiskCommands(bus.publish, clock, account, rules, self)
        bus.subscribe(OperatorCommand, self.commands.on_command)
        # moving stops and target positions (strategy API v2): only when such an intent or its order comes by
        bus.subscribe(ProtectionIntent, self.on_protection_intent)
        bus.subscribe(TargetPositionIntent, self.on_target_intent)
        bus.subscribe(OrderAccepted, self._protection.on_accepted)

    # ------------------------------------------------------------------------------- public API
    def use_fast_path(self, on: bool = True) -> None:
        """Decide plain market entries, closes and flips the short way (:mod:`.fast_path`), with the same answers
        (the composition roots: a backtest with fused orders, every live run)."""
        self._fast = FastIntents(self._decider, self._account, self._rules, self._brackets, self.config,
                                 self._states) if on else None
        # with no equity watch and no loss streak nothing can latch or expire: a balance change does nothing here
        quiet = not self._equity.enabled and self._streak is None
        if on and quiet and self._on_balance in self._bus.handlers(BalanceChanged):
            self._bus.unsubscribe(BalanceChanged, self._on_balance)

    def send_requests_with(self, send: Callable[[OrderRequest], None] | None,
                           fields: Callable[[OrderIntent, Plain, int], None] | None = None) -> None:
        """Backtests: hand order requests to ``send`` instead of publishing them (None: publish again), and the fast
        path's plain MARKET requests to ``fields`` as the intent and their fields (``request_of`` makes the request).
        Both must deliver each to what the bus would (:mod:`kinetic_empire.backtest.direct`)."""
        self._send = send if send is not None else self._bus.publish
        self._send_fields = fields if send is not None else None

    def share_prices(self, table: dict[float, Decimal]) -> None:
        """Backtests: the fast path keeps its reference prices' Decimals in ``table`` (``FastIntents.share_prices``);
        nothing without the fast path."""
        if self._fast is not None:
            self._fast.share_prices(table)

    def moves_pending(self) -> bool:
        """True while a moved stop or take-profit waits for its ``OrderAccepted`` (the only accepted orders the
        gate reacts to; for any other order the handler does nothing)."""
        return bool(self._protection._moving)

    @property
    def exits(self) -> ExitsInFlight:
        """The exits in flight (its ``on_fill`` subscribes to fills from the first exit on)."""
        return self._exits

    @property
    def accepted_handler(self) -> Callable[[OrderAccepted], None]:
        """The gate's ``OrderAccepted`` handler, as subscribed (cancels the stops and targets a moved one replaces)."""
        return self._protection.on_accepted

    def leverage_for(self, symbol: str) -> int:
        """The configured leverage for ``symbol``, checked against its brackets (ConfigError if not)."""
        return self._decider.leverage_for(symbol)

    @property
    def state(self) -> TradingState:
        """The account-wide effective state."""
        return self._states.account()

    def state_of(self, symbol: str) -> TradingState:
        """The effective state for ``symbol`` (the worse of the account's and the symbol's own)."""
        return self._states.effective(symbol)

    def set_state(self, state: TradingState, cause: str, symbol: str | None = None) -> None:
        """Operator switch, account-wide or for one symbol; publishes TradingStateChanged on a change."""
        self._states.set_operator(TradingState(state), cause, symbol)

    # ------------------------------------------------------------------------ resuming a journaled run
    def track_protective_order(self, symbol: str, client_id: str, strategy_id: str) -> None:
        """An open stop or take-profit (from a journal, or re-placed by reconciliation) to manage as ours."""
        self._protection.track(symbol, client_id, strategy_id)

    def expect_entry(self, entry_client_id: str, entry: PendingEntry) -> None:
        """An entry still open whose fill must place its protective orders."""
        self._protection.expect(entry_client_id, entry)

    def track_exit(self, request: OrderRequest, position: Decimal, filled: Decimal = Decimal(0)) -> None:
        """A reduce-only market exit a journal holds as sent and unfinished: new exits are netted of it."""
        self._exits.resumed(request, position, filled)

    def restore_day_start(self, day: int, equity: Decimal) -> None:
        """The daily-loss guard counts from the equity the day started with, not from the restart."""
        self._equity.restore_day_start(day, equity)

    def pause_entries(self, source: str, cause: str) -> None:
        """Hold new entries (REDUCING) on behalf of ``source`` until it calls :meth:`resume_entries`.

        Separate from the operator's state, so an engine-held pause (a stale feed) and an operator's
        switch never undo each other.
        """
        self._states.pause(source, cause)

    def resume_entries(self, source: str, cause: str) -> None:
        self._states.resume(source, cause)

    def reset_drawdown_halt(self, cause: str) -> None:
        """The human reset: lift the drawdown halt and restart the peak from the current equity."""
        self._equity.reset_drawdown(cause)

    def rehearse(self, intent: OrderIntent) -> None:
        """Decide ``intent`` the way :meth:`on_intent` would (the fast path's entry or flip where it answers, else the
        general decision) and drop the answer: both only read (nothing is published, counted or kept beyond their
        caches), so the next real one finds its code and data warm (``kinetic_empire.live.close_poll``)."""
        fast, action = self._fast, intent.action
        if fast is not None and (action is _OPEN_LONG or action is _OPEN_SHORT):
            long = action is _OPEN_LONG
            if fast._entry(intent, long) is not None or fast.flip(intent, long) is not None:
                return
        self._decider.decide(intent, intent.ts_event)

    def atr(self, symbol: str, timeframe: str, period: int = 14) -> float | None:
        """The tracked ATR, or None when not tracked or still warming up."""
        return self._decider.atr(symbol, timeframe, period)

    # ----------------------------------------------------------------------------------- intents
    def on_intent(self, intent: OrderIntent) -> None:
        """Publish the intent's OrderRequest(s), or one RiskDenied."""
        replay = self._replay
        now = replay.time_ms if replay is not None else self._clock.now_ms()  # (a ReplayClock's now_ms, inlined)
        states = self._states
        if self._equity.enabled or states.daily_until_ms is not None or states.cooldown_until:  # (_observe, inlined)
            self._equity.observe(now)
        action = intent.action
        fast = self._fast
        # the fast path's common case first: an entry with no entry of unknown outcome anywhere (the unanswered
        # check finds nothing), or a close with no exit in flight (nothing to net): what the steps below do then
        if fast is not None:
            plain: Plain | None = _UNASKED
            if action is _CLOSE:
                exits = self._exits
                if not exits._symbols:
                    plain = fast._close(intent)  # (fast.plain's)
                    if plain is not None:  # a close, sent against the position it read (the account's, unchanged)
                        exits.sent_market(intent.symbol, plain[0], plain[2], fast.closed)
            elif (action is _OPEN_LONG or action is _OPEN_SHORT) and not self._unanswered._count:
                plain = fast._entry(intent, action is _OPEN_LONG)
                if plain is None:  # a flip, sent as _decide sends the general decision's two requests
                    pair = fast.flip(intent, action is _OPEN_LONG)
                    if pair is not None:
                        self._send_flip(intent, pair, now)
                        return
            if plain is not _UNASKED:
                if plain is not None:  # (_send_plain, inlined)
                    fields = self._send_fields
                    if fields is None:
                        self._send(request_of(intent, plain, now))
                    else:
                        fields(intent, plain, now)
                    return
                self._decide(intent, now, self._decider.decide(intent, now))
                return
        decision: Denial | tuple[list[OrderRequest], PendingEntry | None] | None = None
        if action is IntentAction.OPEN_LONG or action is IntentAction.OPEN_SHORT:
            decision = self._unanswered.check(intent.symbol)
        elif (action is IntentAction.CLOSE or action is IntentAction.REDUCE) and self._exits.tracking:
            cap = self._exits.available(intent.symbol, self._account.position(intent.symbol).quantity)
            if cap is not None:  # exits in flight: the general decision nets them (or the denial says so)
                decision = cap if isinstance(cap, Denial) else self._decider.decide(intent, now, cap)
        if decision is None:
            fast = self._fast
            plain = fast.plain(intent) if fast is not None else None
            if plain is not None:  # (fast.decide's one request, sent as its fields)
                self._send_plain(intent, plain, now)
                return
            decision = self._decider.decide(intent, now)
        self._decide(intent, now, decision)

    def _decide(self, intent: OrderIntent, now: int, decision: Denial | tuple[list[OrderRequest], PendingEntry | None]
                ) -> None:
        """Send what the decision says: one RiskDenied, or the requests (an entry's protection expected first)."""
        if isinstance(decision, Denial):
            self._bus.publish(
                RiskDenied(
                    intent_id=intent.intent_id,
                    strategy_id=intent.strategy_id,
                    symbol=intent.symbol,
                    code=decision.code,
                    message=decision.message,
                    ts_event=now,
                    ts_init=now,
                )
            )
            return
        requests, pending = decision
        if pending is not None:  # before publishing: a synchronous broker may fill at once
            self._protection.expect(requests[-1].client_order_id, pending)
        exits = self._exits
        send = self._send
        for request in requests:
            if request.reduce_only:  # before publishing, as above; a flip's close counts too
                exits.sent(request, self._account.position(request.symbol).quantity)
            send(request)

    def _send_plain(self, intent: OrderIntent, plain: Plain, now: int) -> None:
        """What :meth:`on_intent` does with a decision of one plain MARKET request (no entry awaiting protection):
        an exit counted in flight, then the request sent, as fields where a backtest's direct delivery takes them."""
        if plain[3]:  # reduce-only
            self._exits.sent_market(intent.symbol, plain[0], plain[2], self._account.position(intent.symbol).quantity)
        fields = self._send_fields
        if fields is None:
            self._send(request_of(intent, plain, now))
        else:
            fields(intent, plain, now)

    def _send_flip(self, intent: OrderIntent, pair: tuple[Plain, Plain], now: int) -> None:
        """The fast path's flip: its close counted in flight against the position, then the close and the entry
        sent in that order (a synchronous broker may fill the close at once), as fields where a backtest takes them."""
        closing = pair[0]
        self._exits.sent_market(intent.symbol, closing[0], closing[2], self._account.position(intent.symbol).quantity)
        fields = self._send_fields
        for plain in pair:
            if fields is None:
                self._send(request_of(intent, plain, now))
            else:
                fields(intent, plain, now)

    def on_protection_intent(self, intent: ProtectionIntent) -> None:
        """A moved stop or take-profit (see :mod:`.protection`), or one RiskDenied."""
        now = self._clock.now_ms()
        decided = self._protection.move(intent, self._states.effective(intent.symbol), now)
        if isinstance(decided, Denial):
            self._deny(intent.intent_id, intent.strategy_id, intent.symbol, decided, now)

    def on_target_intent(self, intent: TargetPositionIntent) -> None:
        """The order(s) that take the position to the target (decided as the equivalent intent), or a denial."""
        pos = self._account.position(intent.symbol).quantity
        decided = target_intent(intent, rules=self._rules.get(intent.symbol), position=pos)
        if isinstance(decided, Denial):
            self._deny(intent.intent_id, intent.strategy_id, intent.symbol, decided, self._clock.now_ms())
        elif decided is not None:
            self.on_intent(decided)

    def _deny(self, intent_id: str, strategy_id: str, symbol: str, denial: Denial, now: int) -> None:
        self._bus.publish(RiskDenied(intent_id=intent_id, strategy_id=strategy_id, symbol=symbol, code=denial.code,
                                     message=denial.message, ts_event=now, ts_init=now))

    # ----------------------------------------------------------------------------- bus handlers
    def fills_need_events(self) -> bool:
        """False while :meth:`_on_filled` would do nothing with any fill (no loss streak configured, no entry,
        protective order or moved stop tracked): a backtest's direct delivery then skips building the event."""
        if self._streak is not None:
            return True
        p = self._protection  # (not p.idle, inlined: asked on every fill)
        book = p.book
        return bool(book.pending or book._symbol_of or p._role or p._rank or p._moving)

    def _on_filled(self, fill: OrderFilled) -> None:
        if self._streak is not None:  # the trade's PnL is booked before protection reacts to the fill
            self._streak.on_fill(fill)
        self._protection.on_fill(fill)

    def _on_position(self, event: PositionChanged) -> None:
        self.position_changed(event.symbol, event.quantity)

    def position_changed(self, symbol: str, quantity: Decimal, now: int | None = None) -> None:
        """:meth:`_on_position` with the fields it reads (a backtest's direct delivery calls it without the event,
        with ``now`` when it has just read the same replay clock)."""
        if now is None:
            now = self._clock.now_ms()
        if not quantity and symbol in self._protection.book.open_by_symbol:  # (flat: == 0; what cancel looks for)
            self._protection.cancel(symbol, now)
        exits = self._exits
        if exits._symbols:  # (exits.tracking)
            exits.on_position(symbol, quantity)
        if self._streak is not None:
            self._streak.on_position(symbol, quantity, now)
        states = self._states
        if self._equity.enabled or states.daily_until_ms is not None or states.cooldown_until:  # (_observe, inlined)
            self._equity.observe(now)

    def _observe(self, now: int) -> None:
        """``self._equity.observe(now)``, which does nothing when no equity guard is configured and no latch
        or cooldown can expire (the states' ``expire`` finds nothing): then not called, on every order's path."""
        states = self._states
        if self._equity.enabled or states.daily_until_ms is not None or states.cooldown_until:
            self._equity.observe(now)

    def _on_balance(self, event: BalanceChanged) -> None:
        self._equity.observe(self._clock.now_ms())

    def _publish_state(self, state: TradingState, previous: TradingState, cause: str, symbol: str | None) -> None:
        now = self._clock.now_ms()
        event = TradingStateChanged(
            state=state, previous=previous, cause=cause, symbol=symbol, ts_event=now, ts_init=now
        )
        self.state_changes.append(event)
        self._bus.publish(event)
