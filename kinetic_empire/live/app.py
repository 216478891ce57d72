"""The live composition root: the backtest's objects, with a WebSocket feed and the Binance adapter.

feed (WebSocket + REST backfill; klines, mark price, ticker) -> bus -> [journal, portfolio, risk, strategies]
strategy intents -> risk manager -> order requests -> BinanceExecution -> REST
user data stream -> translator -> order/fill/position/balance events -> bus

Only the market data source and the execution port differ from :mod:`kinetic_empire.backtest.engine`; bus,
runners, risk manager and portfolio are the same classes. Sandbox and Demo differ only in URLs and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..assembly import build_core, resolve_strategies
from ..binance.account import read_modes, require_tradeable
from ..binance.errors import BinanceError
from ..binance.execution import BinanceExecution
from ..binance.market import KlineFeed, market_now
from ..binance.rest import KEEP_WARM_S, BinanceRest
from ..binance.signing import Credentials
from ..binance.translate import UserTranslator, safe
from ..binance.userstream import UserStream
from ..binance.venues import Venue
from ..core.bus import EventBus
from ..core.clock import Clock, LiveClock
from ..core.enums import TradingState
from ..core.errors import ConfigError, HandlerError, KineticError
from ..core.events import Alert, Note, OperatorCommand
from ..core.rules import SymbolRules, parse_exchange_info
from ..core.timeframes import timeframe_ms
from ..portfolio import Portfolio
from ..risk import RiskConfig, RiskManager
from ..risk.guard import ProtectionGuard
from ..strategy.market_hooks import attach_market_hooks
from ..strategy.registry import StrategyRegistry
from ..strategy.runner import StrategyRunner
from ..strategy.state import StateKeeper
from .alerts import ActiveAlerts
from .clock import VenueClock
from .close_poll import ClosePoll, kline_rehearsal
from .config import LiveConfig
from .doctor import Check, Doctor, check_run_folder, format_checks
from .gcpace import KLINE_CLOSE_QUIET_MS, GcPacer
from .journal import SCHEMA_VERSION, Journal
from .reconcile import Reconciler
from .restore import restore_state, restore_strategy_states
from .resume import JournalView
from .venue_setup import (
    apply_symbol_settings,
    fee_rates,
    leverage_brackets,
    mismatch_alerts,
    settle_mismatches,
    usdt_wallet,
    wanted_settings,
)

log = logging.getLogger(__name__)

FLUSH_SLICE = 16  # journal rows written per step of the event loop (a few hundred µs at most)


class PreflightError(KineticError):
    """The doctor found a problem that makes trading impossible; carries the checks."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        super().__init__("preflight failed:\n" + format_checks(checks))


def run_tag(run_id: str) -> str:
    """Five base-36 characters from the run id: the root of every client order id of the run."""
    n = int(hashlib.sha256(run_id.encode()).hexdigest()[:12], 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(5):
        n, r = divmod(n, 36)
        out += digits[r]
    return out


@dataclass
class Health:
    """What the status view and the summary show about the connections and the risk state."""

    paused_for_stale: bool = False
    journal_failure: str = ""  # why entries are paused for the journal ("" while it writes)
    stale_topics: list[str] = field(default_factory=list)
    handler_errors: int = 0
    started_wall: float = 0.0  # epoch seconds, from the engine's timer


class LiveEngine:
    """One live (paper) run on one venue and account."""

    def __init__(
        self,
        config: LiveConfig,
        registry: StrategyRegistry,
        venue: Venue,
        credentials: Credentials | None,
        *,
        run_id: str,
        run_dir: Path,
        check_streams: bool = True,
        unknown_grace_s: float = 1.0,
        stale_after_s: float | None = None,
        rest: BinanceRest | None = None,
        resume: JournalView | None = None,
        reconcile_every_s: float | None = None,
        printer: Callable[[str], None] | None = None,
        timer: Clock | None = None,
        rest_trace: list[Any] | None = None,
    ) -> None:
        self.config = config
        self.timer: Clock = timer or LiveClock()  # wall stamps, durations, waits; market time is ``self.clock``
        self.registry = registry
        self.venue = venue
        self.credentials = credentials
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.tag = run_tag(run_id)
        self.check_streams = check_streams
        self.unknown_grace_s = unknown_grace_s
        self.stale_after_s = stale_after_s if stale_after_s is not None else config.stale_threshold_s()
        self.rest = rest or BinanceRest(venue.rest_url, credentials, recv_window_ms=config.recv_window_ms,
                                        timeout_s=config.request_timeout_s, clock=self.timer, trace_configs=rest_trace,
                                        keep_warm_s=KEEP_WARM_S)  # no handshake on an order after a quiet spell
        self.health = Health(started_wall=self.timer.now_ms() / 1000)
        self.checks: list[Check] = []
        self.symbols = config.symbols
        self._tasks: list[asyncio.Task[Any]] = []
        self._errors_seen: set[tuple[str, str]] = set()
        self.started = False
        # built in start()
        self.bus: EventBus
        self.clock: VenueClock
        self.journal: Journal
        self.portfolio: Portfolio
        self.translator: UserTranslator
        self.execution: BinanceExecution
        self.risk: RiskManager
        self.feed: KlineFeed
        self.user: UserStream
        self.runners: list[StrategyRunner] = []
        self.rules: dict[str, SymbolRules] = {}
        self.initial_balance = Decimal(0)
        self.resume_view = resume
        self.reconcile_every_s = reconcile_every_s
        self.printer = printer
        self.reconciler: Reconciler  # built in start(), once the translator, port and risk manager exist
        self.guard: ProtectionGuard  # keeps every position's stop live (or closes it); built with the reconciler
        self.alerts = ActiveAlerts()  # Alert events not cleared yet, for the status view
        self.initial_state = TradingState.ACTIVE
        # gateway hooks: bus readers attached once the core exists (before trading); journal confirm timing
        self.readers: list[Callable[[LiveEngine], None]] = []
        self.on_journal_commit: Callable[[float], None] | None = None
        self._flushing: asyncio.Task[None] | None = None  # a flush of a full batch, started by the journal
        self.gc = GcPacer(self.timer, quiet_ms=KLINE_CLOSE_QUIET_MS)  # between klines, not inside one (.gcpace)
        self.close_poll = ClosePoll(self.timer, KLINE_CLOSE_QUIET_MS if config.close_poll else None)  # awake at closes

    # ------------------------------------------------------------------------------ start-up
    async def start(self) -> None:
        cfg = self.config
        folder = check_run_folder(self.run_dir)  # before the journal or the venue is touched
        if folder.failed:
            self.checks = [folder]
            raise PreflightError(self.checks)
        rest = await self.rest.start(connections=2 * len(self.symbols) + 1)  # a flip is 2 orders; +1: a ping's
        specs = resolve_strategies(cfg.strategies, self.registry)
        risk_config = RiskConfig.from_mapping(cfg.risk, "risk", default_margin_type=cfg.margin_type)
        risk_config.check_strategy_ids(self.registry.names())
        await rest.sync_time()
        brackets = await leverage_brackets(self.rest, self.symbols)
        leverage = {sym: risk_config.check_leverage(sym, brackets) for sym in self.symbols if sym in brackets}
        adopt = cfg.settings_mismatch == "adopt"
        doctor = Doctor(rest, self.venue, self.symbols, leverage, margin_type=risk_config.margin_type_for,
                        stream_timeout_s=cfg.stream_check_timeout_s, check_streams=self.check_streams, adopt=adopt)
        if cfg.preflight:
            self.checks = [folder, *await doctor.run()]
            if not doctor.ok:
                raise PreflightError(self.checks)
            info, actual, mismatches = doctor.exchange_info, doctor.venue_settings, doctor.mismatches
        else:
            info = None
        if info is None:
            info = await rest.get("/fapi/v1/exchangeInfo")
        modes = await read_modes(rest)  # with or without the preflight: hedge mode is refused here
        require_tradeable(modes)  # and logs what multi-assets mode means for the wallet
        if not cfg.preflight:  # the doctor has set them otherwise; either way read back before the gate is built
            actual, mismatches = await apply_symbol_settings(rest, wanted_settings(self.symbols, risk_config, leverage))
        risk_config = settle_mismatches(risk_config, actual, mismatches, adopt=adopt)
        self.rules = parse_exchange_info(info)
        for sym in self.symbols:
            if sym not in self.rules:
                raise ConfigError("strategies", f"{sym} is not listed by the venue's exchangeInfo")
        limits: list[dict[str, Any]] = list(info.get("rateLimits") or [])
        weight = next((r.get("limit") for r in limits if r.get("rateLimitType") == "REQUEST_WEIGHT"
                       and r.get("interval") == "MINUTE"), None)
        if weight:
            rest.weight_limit = int(weight)
        maker, taker = await fee_rates(self.rest, self.symbols)
        wallet = await usdt_wallet(self.rest)
        self.initial_balance = wallet

        self.clock = clock = VenueClock(await market_now(rest), self.timer)
        self.bus = bus = EventBus(on_error=self._on_handler_error)
        self.journal = Journal(self.run_dir / "journal.sqlite")
        self.journal.attach(bus)  # first: commands are journaled before the port can send them
        view = self.resume_view
        if view is not None:  # the run goes on: its identity and start stay, the end marker goes
            self.journal.reopen(pid=os.getpid(), resumes=int(view.meta.get("resumes", 0)) + 1,
                                resumed_wall_ms=int(self.health.started_wall * 1000))
        else:
            self.journal.set_meta(
                pid=os.getpid(), schema_version=SCHEMA_VERSION, run_id=self.run_id, run_tag=self.tag,
                venue=self.venue.name, rest_url=self.venue.rest_url, ws_url=self.venue.ws_url,
                account=self.credentials.fingerprint if self.credentials else "", initial_balance=str(wallet),
                started_wall_ms=int(self.health.started_wall * 1000), started_market_ms=clock.now_ms(),
                config=cfg.to_dict(), fees={"maker": str(maker), "taker": str(taker)},
            )

        def connect_port(bus: EventBus, portfolio: Portfolio) -> BinanceExecution:
            self.portfolio = portfolio
            self.translator = UserTranslator(bus.publish, clock.now_ms, portfolio.leverage, observe=clock.observe,
                                             symbols=self.symbols)
            self.translator.wallet, self.translator.modes = wallet, modes
            self.execution = BinanceExecution(bus, rest, self.translator, unknown_grace_s=self.unknown_grace_s,
                                              on_unknown=self._reconcile_soon,
                                              before_send=self._confirm, on_refused=self._journal_refused,
                                              timer=self.timer)
            return self.execution

        core = build_core(bus=bus, clock=clock, specs=specs, rules=self.rules, brackets=brackets,
                          risk_config=risk_config, initial_balance=wallet, fee_rate_taker=taker, fee_rate_maker=maker,
                          connect_port=connect_port, id_tag=self.tag, fail_fast=False, window=cfg.window,
                          last_seq=view.last_seq if view is not None else None, fast_risk=True)  # resumed: ids go on
        self.risk = core.risk
        self.runners.extend(core.runners)
        self.market_hooks, wanted = attach_market_hooks(core.runners, bus, live=True)  # only if a strategy asks
        self.state_keepers = [StateKeeper(r, bus, clock) for r in core.runners]  # after the hooks: checks follow
        self._initial_state = self.initial_state = risk_config.state
        self._wire_commands()
        for attach in self.readers:
            attach(self)
        for alert in mismatch_alerts(mismatches, clock.now_ms(), adopted=True):  # journaled, on the status view
            bus.publish(alert)
        self.journal.set_meta(leverage=dict(core.leverage))

        topics = [(sym, r.timeframe) for r in core.runners for sym in r.symbols]
        if view is not None:
            self._restore(view)
        if cfg.price_timeframe:  # fresh marks for equity and risk on every symbol, as a backtest's 1m execution
            topics += [(sym, cfg.price_timeframe) for sym in self.symbols]
        topics = sorted(set(topics), key=lambda t: (t[0], timeframe_ms(t[1])))
        self.feed = KlineFeed(rest, self.venue, topics, bus.publish, clock.now_ms, observe=clock.observe,
                              clock=self.timer, marks=wanted.mark_price, tickers=wanted.ticker)
        self.user = UserStream(rest, self.venue, safe(self.translator.on_message, "user stream"),
                               self._on_user_connect, clock=self.timer)
        self._spawn(self.user.run(), "user stream")
        try:
            await asyncio.wait_for(self.user.ready.wait(), timeout=max(10.0, cfg.stream_check_timeout_s))
        except TimeoutError:
            raise KineticError(f"user data stream did not connect: {self.user.last_error or 'timeout'}") from None
        # long enough that recursive indicators (EMA, RSI, ATR) equal a full-history backtest's to 1e-9
        warm = await self.feed.warm_up(max([cfg.window, *(r.live_history_needed() for r in self.runners)]))
        for runner, keeper in zip(self.runners, self.state_keepers):
            runner.warm_up_from(warm)
            keeper.start()  # the runner's start, then the state on_start set up is saved
        self._spawn(self.feed.run(), "market stream")
        if self.stale_after_s:
            self._spawn(self._watch_feed(self.stale_after_s), "feed watchdog")
        self._spawn(self._flush_journal(), "journal flush")
        self._spawn(self.guard.run(), "protection guard")
        if self.reconcile_every_s:
            self._spawn(self._reconcile_periodically(self.reconcile_every_s), "periodic reconciliation")
        self.started = True
        self.gc.start()  # start-up objects leave the collector's scans; collections run between klines
        self._spawn(self.gc.run(), "garbage collection")
        self.close_poll.rehearse = kline_rehearsal(self.journal, self.risk, self.rest, self.portfolio, self.runners,
                                                   self.timer)  # the kline path, warm when a close comes
        self._spawn(self.close_poll.run(), "close poll")
        log.info("live run %s started on %s (%s) with %d strategies on %s", self.run_id, self.venue.name,
                 self.venue.rest_url, len(self.runners), ", ".join(self.symbols))

    # ------------------------------------------------------------------------------ resume, reconcile
    def _wire_commands(self) -> None:
        """Reconciliation and shutdown place and cancel orders only through the risk manager's commands."""
        commands = self.risk.commands
        commands.symbols, commands.id_prefix = tuple(self.symbols), self.tag
        self.guard = ProtectionGuard(self.bus.publish, commands, self.clock, self.timer,
                                     within_s=self.config.protect_within_s)
        self.guard.subscribe(self.bus)
        self.bus.subscribe(Alert, self.alerts.on_alert)
        self.reconciler = Reconciler(self.translator, self.execution, self.risk, self.guard.check,
                                     self.bus, self.clock.now_ms, self.symbols, initial_state=self.initial_state,
                                     printer=self.printer, timer=self.timer,
                                     spawn=lambda coro: self._spawn(coro, "reconciliation second look"))

    def _restore(self, view: JournalView) -> None:
        """What the journal believed, before the first reconciliation checks it against the venue."""
        restore_state(view, reconciler=self.reconciler, risk=self.risk, guard=self.guard, translator=self.translator,
                      rules=self.rules, today=self.clock.now_ms() // 86_400_000)
        restore_strategy_states(self.run_dir / "journal.sqlite", self.state_keepers)  # before on_start
        log.warning("resuming run %s: %s", self.run_id, view.summary())

    async def _on_user_connect(self) -> None:
        first = self.user.connections <= 1
        reason = "resume" if self.reconciler.resume is not None else "start" if first else "user stream reconnect"
        await self.reconciler.run(reason, trading=reason == "user stream reconnect")

    def _reconcile_soon(self, symbol: str) -> None:
        """The port could not settle an order's outcome: reconcile now, not at the next timer or reconnect."""
        async def run() -> None:
            with contextlib.suppress(BinanceError):
                await self.reconciler.run(f"unknown order outcome on {symbol}")
        self._spawn(run(), "reconcile after an unknown outcome")

    async def _reconcile_periodically(self, every_s: float) -> None:
        while True:
            await self.timer.sleep(every_s)
            try:
                await self.reconciler.run("periodic")
            except BinanceError as exc:
                log.warning("periodic reconciliation failed (%s); next in %g s", exc, every_s)

    # ------------------------------------------------------------------------------ running
    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)

    def _on_handler_error(self, error: HandlerError) -> None:
        """Live: a failing handler is reported (once per handler and error type) and the run goes on."""
        self.health.handler_errors += 1
        key = (error.handler, type(error.cause).__name__)
        if key in self._errors_seen:
            log.debug("%s", error)
            return
        self._errors_seen.add(key)
        log.error("%s", error, exc_info=error.cause)

    async def _watch_feed(self, stale_after_s: float) -> None:
        """Pause entries (REDUCING) while any stream is silent past the threshold; resume when fresh."""
        started = self.timer.monotonic()
        while True:
            await self.timer.sleep(min(1.0, stale_after_s / 4))
            now = self.timer.monotonic()
            stale = []
            for sym, tf in self.feed.topics:
                age = self.feed.age_s((sym, tf))
                if (age if age is not None else now - started) > stale_after_s:
                    stale.append(f"{sym} {tf}")
            self.health.stale_topics = stale
            if stale and not self.health.paused_for_stale:
                self.health.paused_for_stale = True
                cause = f"FEED_STALE no market data for {stale_after_s:g} s on {', '.join(stale)}"
                log.warning("%s: new entries paused", cause)
                self.risk.pause_entries("feed", cause)
                self._note("feed", cause)
            elif not stale and self.health.paused_for_stale:
                self.health.paused_for_stale = False
                log.warning("market data fresh again: entries resumed")
                self.risk.resume_entries("feed", "FEED_FRESH market data flowing again")
                self._note("feed", "market data fresh again")

    def _confirm(self, command: Any) -> None:
        """The journal's gate before every send, timed for the gateway's metrics when it asks."""
        t0 = self.timer.monotonic()
        self.journal.confirm(command)
        if self.on_journal_commit is not None:
            self.on_journal_commit(self.timer.monotonic() - t0)

    def _journal_refused(self, command: Any, reason: str) -> None:
        """A command the journal could not make durable was not sent: no new positions until a restart."""
        self._journal_down(f"{type(command).__name__} {getattr(command, 'client_order_id', '') or command.symbol} "
                           f"not sent: {reason}")

    def _journal_down(self, why: str) -> None:
        if self.health.journal_failure:
            log.debug("journal still unavailable: %s", why)
            return
        self.health.journal_failure = why
        log.error("%s; new entries paused (fix the disk, then restart with --resume %s)", why, self.run_id)
        self.risk.pause_entries("journal", why)

    def _note(self, topic: str, message: str, **data: Any) -> None:
        now = self.clock.now_ms()
        self.bus.publish(Note(topic=topic, message=message, data=data, ts_event=now, ts_init=now))

    async def _flush_journal(self) -> None:
        """Every half second, and as soon as a batch waits (``Journal.on_backlog``): never inside a kline's path."""
        self.journal.on_backlog = self._flush_soon
        while True:
            await self.timer.sleep(0.5)
            await self._flush_slices()

    def _flush_soon(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_slices(), name="journal backlog")

    async def _flush_slices(self) -> None:
        if not await self.journal.flush_in_slices(FLUSH_SLICE):
            self._journal_down(self.journal.failure)

    def last_activity(self) -> float:
        """Monotonic time of the latest message on either stream."""
        times = [self.user.last_message, *self.feed.last_message.values()]
        return max(times, default=0.0)

    async def settle(self, quiet_s: float = 0.02, timeout: float = 10.0) -> None:
        """Wait until no request is in flight and neither stream has spoken for ``quiet_s`` (tests)."""
        timer = self.timer
        deadline = timer.monotonic() + timeout
        while timer.monotonic() < deadline:
            await timer.sleep(quiet_s / 2)
            if self.execution.busy:
                await self.execution.drain(timeout=max(0.0, deadline - timer.monotonic()))
                continue
            if (timer.monotonic() - self.last_activity() >= quiet_s and not self.execution.busy
                    and not self.feed.backfilling):
                return

    async def wait(self, duration_s: float | None = None, stop: asyncio.Event | None = None,
                   until: Callable[[], bool] | None = None) -> str:
        """Run until the duration passes, ``stop`` is set or ``until()`` is true; returns why it ended."""
        end = None if duration_s is None else self.timer.monotonic() + duration_s
        while True:
            if stop is not None and stop.is_set():
                return "stopped by the operator"
            if end is not None and self.timer.monotonic() >= end:
                return f"duration of {duration_s:g} s reached"
            if until is not None and until():
                return "the venue's data ended"
            dead = [t for t in self._tasks if t.done()]
            for t in dead:
                if not t.cancelled() and t.exception() is not None:
                    raise KineticError(f"{t.get_name()} failed: {t.exception()}") from t.exception()
            await self.timer.sleep(0.1)

    # ------------------------------------------------------------------------------ shutdown
    async def shutdown(self, policy: str | None = None) -> None:
        """Stop trading; ``flatten`` cancels every order and closes every position, ``leave`` keeps them."""
        policy = policy or self.config.shutdown
        self.gc.stop()
        if not self.started:  # start-up failed part way: release what it had opened
            await self._cancel_tasks()
            if hasattr(self, "journal"):
                self.journal.close()
            await self.rest.close()
            return
        await self.feed.stop()
        for keeper in self.state_keepers:
            keeper.stop()  # the runner's stop, then what on_stop changed is saved
        await self.execution.drain(abandon_lookups=True)  # an unknown outcome is looked up by the next start
        if policy == "flatten":
            await self._flatten()
        await self.settle(quiet_s=0.2, timeout=5.0)
        await self.user.stop()
        await self._cancel_tasks()
        try:
            self.journal.set_meta(ended_wall_ms=self.timer.now_ms(), ended_market_ms=self.clock.now_ms(),
                                  shutdown=policy)
        except sqlite3.Error as exc:  # no end marker: the next start resumes it as an unclean stop
            log.error("journal: clean-stop marker not written (%s); resume the run once the disk is fixed", exc)
        self.journal.close()
        await self.rest.close()
        self.started = False

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _flatten(self) -> None:
        """Shutdown's flatten: an :class:`OperatorCommand` like an operator's, through the risk gate."""
        log.warning("shutdown: cancelling every order and closing every position on %s", ", ".join(self.symbols))
        await self.execution.reconcile(self.symbols)  # close what the venue holds, not an older belief
        now = self.clock.now_ms()
        self.bus.publish(OperatorCommand(action="flatten", source="shutdown", cause="shutdown policy flatten",
                                         ts_event=now, ts_init=now))
        await self.execution.drain()
        deadline = self.timer.monotonic() + 10.0
        while self.timer.monotonic() < deadline and any(q != 0 for q, _e in self.translator.positions.values()):
            await self.timer.sleep(0.1)
        await self.execution.reconcile(self.symbols)
        self.risk.set_state(TradingState.HALTED, "SHUTDOWN flatten")
