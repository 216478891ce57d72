"""What ``kinetic run``, ``doctor``, ``report`` and ``compare`` do, once their options are parsed.

The options live in the light modules ``kinetic_empire.cli.run`` (and ``doctor``, ``report``,
``compare``), so ``--help`` never imports this module; each ``*_main(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from ..binance.signing import ENV_KEY, ENV_SECRET, Credentials, load_credentials
from ..binance.venues import SANDBOX, Venue
from ..core.clock import Clock, LiveClock
from ..core.errors import KineticError
from ..core.names import safe_name, to_safe_name
from ..logs import JsonFormatter
from ..strategy.registry import StrategyRegistry, build_registry
from .app import LiveEngine, PreflightError
from .config import LiveConfig
from .doctor import Doctor, format_checks
from .journal import read_events
from .report import build_report, run_dir_for, summary
from .resume import JournalView, check_journal, unclean_stop
from .runlock import RunLock
from .sandbox_venue import local_sandbox
from .status import StatusView

log = logging.getLogger("kinetic_empire.live")

# ------------------------------------------------------------------------------------------ shared


def _load(args: argparse.Namespace) -> tuple[LiveConfig, StrategyRegistry]:
    config = LiveConfig.load(args.config).with_overrides(
        venue=args.venue, rest_url=args.rest_url, ws_url=args.ws_url, speed=args.speed,
        shutdown=getattr(args, "shutdown", None), runs_dir=getattr(args, "runs_dir", None),
        preflight=False if getattr(args, "no_preflight", False) else None,
        api_host=getattr(args, "api_host", None), api_port=getattr(args, "api_port", None),
    )
    return config, build_registry([Path(p) for p in args.strategy_path])


def _credentials(args: argparse.Namespace) -> Credentials:
    creds = load_credentials(dotenv=Path(args.env_file))
    if creds is None:
        raise KineticError(
            f"no API keys: set {ENV_KEY} and {ENV_SECRET} in the environment or in {args.env_file} "
            "(demo keys: demo.binance.com > API management). The local sandbox needs none: --venue sandbox"
        )
    return creds


@contextlib.asynccontextmanager
async def _venue(
    config: LiveConfig, registry: StrategyRegistry, args: argparse.Namespace
) -> AsyncIterator[tuple[Venue, Credentials, Callable[[], bool] | None]]:
    """(venue, credentials, until) for the configured venue; the sandbox runs for the block."""
    if config.venue == SANDBOX and not config.rest_url:
        async with local_sandbox(config, registry) as (sb, venue, creds):
            yield venue, creds, (lambda: sb.replay.done)
        return
    preset = config.resolve_venue()
    assert preset is not None
    yield preset, _credentials(args), None


@contextlib.contextmanager
def _run_logging(run_dir: Path, quiet_console: bool) -> Iterator[None]:
    """JSON lines to ``run_dir/kinetic.log``; the console keeps errors only while the status view draws."""
    root = logging.getLogger()
    handler = logging.FileHandler(run_dir / "kinetic.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(min(old_level or logging.WARNING, logging.INFO))
    consoles = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h is not handler
                and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
    levels = [h.level for h in consoles]
    if quiet_console:
        for h in consoles:
            h.setLevel(max(h.level, logging.ERROR))
    try:
        yield
    finally:
        for h, lvl in zip(consoles, levels):
            h.setLevel(lvl)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def default_run_id(config: LiveConfig, clock: Clock | None = None) -> str:
    """``<UTC start>-<venue>-<strategies>``: sortable, and says what ran where."""
    now_ms = (clock or LiveClock()).now_ms()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ms // 1000))
    names = "+".join(dict.fromkeys(s.name for s in config.strategies))
    return to_safe_name(f"{stamp}-{config.venue}-{names}")  # a "module:Class" reference has a ':'



# ---------------------------------------------------------------------------------------------- run


def run_main(args: argparse.Namespace) -> int:
    if args.resume is not None:
        safe_name(args.resume, "run id", "--resume")
    if args.run_id is not None:
        safe_name(args.run_id, "run id", "--run-id")
    config, registry = _load(args)
    if not getattr(args, "no_api", False):
        from ..api import ENV_TOKEN, check_host

        check_host(config.api_host, bool(os.environ.get(ENV_TOKEN)))  # before the run folder is touched
    run_id = args.resume or args.run_id or default_run_id(config)
    run_dir = Path(config.runs_dir) / run_id
    if args.resume and not run_dir.is_dir():
        check_journal(run_dir / "journal.sqlite")  # "no run R": said without creating its folder
    existed = run_dir.exists()
    try:
        # one writer per run: locked before the journal is read or the venue is touched, held to the end
        with RunLock.acquire(run_dir, run_id, LiveClock().now_ms()):
            args.resuming = _resuming(args, run_id, run_dir / "journal.sqlite")
            if args.resuming and config.venue == SANDBOX and not config.rest_url:
                raise KineticError("the in-process sandbox keeps nothing across runs, so there is nothing to resume: "
                                   "run `kinetic sandbox --state FILE --keys FILE` and point --rest-url/--ws-url at it")
            status_tty = not args.no_status and sys.stdout.isatty()
            with _run_logging(run_dir, quiet_console=status_tty):
                return asyncio.run(_run(config, registry, args, run_id, run_dir))
    except Exception:
        if not existed:
            _remove_if_untraded(run_dir)
        raise


def _remove_if_untraded(run_dir: Path) -> None:
    """A new run that failed before trading (bad data, keys, venue) leaves no folder holding only a log;
    one whose journal holds any intent or order is kept whatever happened."""
    journal = run_dir / "journal.sqlite"
    if journal.exists():
        try:
            if any(True for _ in read_events(journal, ("OrderIntent", "OrderRequest"))):
                return
        except KineticError:
            return  # unreadable: keep it for a human to look at
    shutil.rmtree(run_dir, ignore_errors=True)


def _resuming(args: argparse.Namespace, run_id: str, journal: Path) -> bool:
    """Resume (explicitly, or because the journal shows an unclean stop), start afresh, or refuse."""
    if args.resume:
        check_journal(journal)  # missing, corrupt or another version: reported before anything else
        return True
    if not journal.exists():
        return False
    meta = check_journal(journal)
    if unclean_stop(meta):
        print(f"run {run_id} stopped uncleanly (no end marker, process {meta.get('pid')} gone): resuming it")
        return True
    if "ended_wall_ms" not in meta:
        raise KineticError(f"run {run_id} is still running (process {meta.get('pid')}); stop it first")
    raise KineticError(f"run {run_id} exists in {journal.parent} and ended cleanly; continue it with "
                       f"--resume {run_id} or choose another --run-id")


async def _run(config: LiveConfig, registry: StrategyRegistry, args: argparse.Namespace, run_id: str,
               run_dir: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, _on_signal(stop))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    plan = ", ".join(f"{s.name} on {'/'.join(s.symbols)}" for s in config.strategies)
    print(f"kinetic run {run_id}: venue {config.venue}, strategies {plan}")
    async with _venue(config, registry, args) as (venue, creds, until):
        view = None
        if getattr(args, "resuming", False):
            journal = run_dir / "journal.sqlite"
            meta = check_journal(journal, rest_url=venue.rest_url, account=creds.fingerprint)
            view = JournalView.load(journal, meta)
            print(f"resuming {run_id}: {view.summary()}")
        every = getattr(args, "reconcile_every", None)
        timer = LiveClock()
        api = None if getattr(args, "no_api", False) else _Api(config, run_dir, timer)
        engine = LiveEngine(config, registry, venue, creds, run_id=run_id, run_dir=run_dir, resume=view,
                            reconcile_every_s=every or None, printer=print, timer=timer,
                            rest_trace=api.rest_trace() if api else None)
        if api is not None:
            api.wire(engine)
        status = None if args.no_status else (StatusView(engine) if api is None else _AlertStatus(engine, api))
        status_task = None
        reason = "start-up failed"
        try:
            await engine.start()
            print(f"preflight ({venue.rest_url}):\n{format_checks(engine.checks)}" if engine.checks else
                  "preflight skipped")
            if api is not None:
                await api.start(run_dir)
            until_text = "Ctrl-C to stop" if args.duration is None else f"for {args.duration:g} s (Ctrl-C stops)"
            print(f"trading; {until_text}; logs: {run_dir / 'kinetic.log'}")
            if status is not None:
                status_task = asyncio.ensure_future(status.run())
            reason = await engine.wait(args.duration, stop, until)
        except PreflightError as exc:
            print(f"preflight failed ({venue.rest_url}):\n{format_checks(exc.checks)}", file=sys.stderr)
            return 1
        finally:
            if status_task is not None:
                status_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await status_task
                status.clear()  # type: ignore[union-attr]
            if api is not None:
                await api.stop()
            if engine.started:
                print(f"stopping ({reason}); shutdown policy: {config.shutdown}")
            await engine.shutdown()
    if not (run_dir / "journal.sqlite").exists():
        return 1
    report = build_report(run_dir)
    print(summary(run_dir))
    print(f"market stream: {engine.feed.published} klines ({engine.feed.backfilled} backfilled, "
          f"{engine.feed.reconnects} reconnects); user stream: {engine.user.reconnects} reconnects; "
          f"orders placed {engine.execution.placed}, rejected {engine.execution.rejected}")
    print(f"journal: {run_dir / 'journal.sqlite'}")
    print(f"report:  {report}/  (open {report / 'report.html'})")
    return 0


class _Api:
    """The run's operator gateway: token, metrics hooks, serving, and the one line that prints the token."""

    def __init__(self, config: LiveConfig, run_dir: Path, timer: Clock) -> None:
        from ..api import ApiMetrics, resolve_token

        self.config, self.timer = config, timer
        self.token, self.token_source = resolve_token(run_dir)
        self.metrics = ApiMetrics()
        self.gateway: Any = None

    def rest_trace(self) -> list[Any]:
        return [self.metrics.trace_config(self.timer)]

    def wire(self, engine: LiveEngine) -> None:
        from ..api import Gateway

        self.gateway = Gateway(engine, token=self.token, host=self.config.api_host, port=self.config.api_port,
                               runs_dir=self.config.runs_dir, metrics=self.metrics)
        engine.readers.append(self.gateway.attach)
        engine.on_journal_commit = self.metrics.on_journal_commit

    async def start(self, run_dir: Path) -> None:
        url = await self.gateway.start()
        print(f"dashboard: {self.gateway.login_url(self.token)}")  # the only place the token is shown
        print(f"operator API: {url}/api (token: {self.token_source}); report: {run_dir / 'report'}/ at the end")

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()


class _AlertStatus(StatusView):
    """The status view with a line per active alert of the gateway (weight, errors, stale feed, no stop...)."""

    def __init__(self, engine: LiveEngine, api: _Api) -> None:
        super().__init__(engine)
        self._api = api

    def _alerts(self) -> list[str]:
        gateway = self._api.gateway
        return gateway.alerts.lines() if gateway is not None else []

    def lines(self) -> list[str]:
        return [*super().lines(), *self._alerts()]

    def line(self) -> str:
        alerts = self._alerts()
        return super().line() + (f" | {' | '.join(alerts)}" if alerts else "")


def _on_signal(stop: asyncio.Event) -> Callable[[], None]:
    def handler() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after the current step (Ctrl-C again to abort)", file=sys.stderr)
        stop.set()

    return handler


# ------------------------------------------------------------------------------------------- doctor


def doctor_main(args: argparse.Namespace) -> int:
    config, registry = _load(args)
    return asyncio.run(_doctor(config, registry, args))


async def _doctor(config: LiveConfig, registry: StrategyRegistry, args: argparse.Namespace) -> int:
    from ..binance.rest import BinanceRest
    from ..risk import RiskConfig

    risk = RiskConfig.from_mapping(config.risk, "risk", default_margin_type=config.margin_type)
    leverage = {sym: risk.leverage_for(sym) for sym in config.symbols}
    async with _venue(config, registry, args) as (venue, creds, _until):
        assert isinstance(venue, Venue)
        async with BinanceRest(venue.rest_url, creds, recv_window_ms=config.recv_window_ms,
                               timeout_s=config.request_timeout_s, max_retries=1) as rest:
            doctor = Doctor(rest, venue, config.symbols, leverage, margin_type=risk.margin_type_for,
                            stream_timeout_s=args.timeout, adopt=config.settings_mismatch == "adopt")
            checks = await doctor.run()
    print(f"kinetic doctor: venue {venue.name} ({venue.rest_url}, streams {venue.ws_url})")
    print(format_checks(checks))
    failed = [c for c in checks if c.failed]
    print("ready to trade" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------- report


def report_main(args: argparse.Namespace) -> int:
    run_dir = run_dir_for(args.run_id, args.runs_dir, where="kinetic report RUN_ID")
    path = build_report(run_dir)
    print(summary(run_dir))
    print(f"report: {path}/  (open {path / 'report.html'})")
    return 0
