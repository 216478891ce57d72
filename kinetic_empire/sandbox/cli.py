"""What ``kinetic sandbox`` does, once its options are parsed: run the local exchange on its own.

It prints the REST and WebSocket base URLs and a sandbox-only API key and secret, then replays the
klines until interrupted. The options live in the light module ``kinetic_empire.cli.sandbox`` (so
``--help`` imports no aiohttp); ``python -m kinetic_empire.sandbox`` runs the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from ..exchange.config import ExchangeConfig
from .config import FaultConfig, RateLimitConfig, SandboxConfig
from .server import SandboxServer

_RATES = ("error_executed_rate", "error_rejected_rate", "timeout_rate", "burst_rate", "ws_drop_rate", "ws_stall_rate")


def check_args(args: argparse.Namespace) -> None:
    """Every flag's range, and the files named, before anything starts (ValueError: one line, exit 2)."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: must be between 0 and 65535 (0: any free port)")
    for name in _RATES:
        value = getattr(args, name)
        if not 0 <= value <= 1:
            raise ValueError(f"--{name.replace('_', '-')} {value}: a rate is a probability between 0 and 1")
    if args.latency_ms and not 0 <= args.latency_ms[0] <= args.latency_ms[1]:
        raise ValueError(f"--latency-ms {args.latency_ms[0]:g} {args.latency_ms[1]:g}: give MIN MAX with "
                         "0 <= MIN <= MAX")
    for name in ("unknown_visible_after_ms", "updates_after_fill"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be 0 (off) or more")
    if args.speed is not None and not args.speed >= 0:
        raise ValueError(f"--speed {args.speed}: must be 0 (stepped) or more")
    for path in args.data or ():
        if not path.exists():
            raise ValueError(f"--data {path}: no such file or folder")
    for flag, path in (("--keys", args.keys), ("--exchange-info", args.exchange_info), ("--brackets", args.brackets)):
        if path is not None and path.exists():
            try:
                json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{flag} {path}: not valid JSON ({exc})") from None
        elif path is not None and flag != "--keys":
            raise ValueError(f"{flag} {path}: no such file")


def build_config(args: argparse.Namespace) -> SandboxConfig:
    data = args.data
    if not data:
        from ..data import sample_data_dir

        data = [sample_data_dir()]
    faults = FaultConfig(
        seed=args.fault_seed, latency_ms=tuple(args.latency_ms) if args.latency_ms else (0.0, 0.0),
        error_executed_rate=args.error_executed_rate, error_rejected_rate=args.error_rejected_rate,
        timeout_rate=args.timeout_rate, rate_limit_burst_rate=args.burst_rate, clock_skew_ms=args.clock_skew_ms,
        ws_drop_rate=args.ws_drop_rate, ws_stall_rate=args.ws_stall_rate,
        unknown_visible_after_ms=args.unknown_visible_after_ms, updates_after_fill=args.updates_after_fill,
    )
    faults.enabled = any((args.latency_ms, args.error_executed_rate, args.error_rejected_rate, args.timeout_rate,
                          args.burst_rate, args.clock_skew_ms, args.ws_drop_rate, args.ws_stall_rate,
                          args.updates_after_fill))
    exchange = ExchangeConfig(initial_balance=args.balance, maker_fee=args.maker_fee, taker_fee=args.taker_fee,
                              default_leverage=args.leverage, max_fill_qty=dict(args.partial_fill))
    return SandboxConfig(
        host=args.host, port=args.port, data=list(data), symbols=args.symbols, start=args.start, end=args.end,
        speed=args.speed, updates_per_kline=args.updates_per_kline, warmup_klines=args.warmup,
        time_origin=args.time_origin, keys_file=args.keys, state_file=args.state, exchange=exchange,
        exchange_info=json.loads(args.exchange_info.read_text()) if args.exchange_info else None,
        leverage_brackets=json.loads(args.brackets.read_text()) if args.brackets else None,
        listen_key_validity_ms=int(args.listen_key_minutes * 60_000),
        limits=RateLimitConfig(enforce=not args.no_limits), faults=faults, admin=args.admin,
        market_fills=args.market_fills, legacy_routes=args.legacy_routes,
    )


def describe(sb: SandboxServer) -> dict[str, object]:
    series = sb.market.series
    return {
        "rest": sb.rest_url,
        "ws": sb.ws_url,
        "api_key": sb.api_key,
        "api_secret": sb.api_secret,
        "symbols": list(series),
        "start": sb.replay.start_time(),
        "speed": sb.config.speed,
    }


def _print(sb: SandboxServer, as_json: bool) -> None:
    info = describe(sb)
    if as_json:
        print(json.dumps(info), flush=True)
        return
    speed = sb.config.speed
    pace = "stepped (use --admin to step)" if not speed else "as fast as possible" if speed == float("inf") else (
        f"x{speed:g} real time")
    start = datetime.fromtimestamp(sb.replay.start_time() / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("Kinetic Empire sandbox: a local Binance USD-M futures exchange (sandbox keys only)", flush=True)
    print(f"  REST       {info['rest']}    (in place of https://fapi.binance.com)")
    print(f"  WebSocket  {info['ws']}      (/market/stream?streams=, /public/stream?streams= for book and "
          "trades, /private/ws?listenKey=)")
    print(f"  API key    {info['api_key']}")
    print(f"  Secret     {info['api_secret']}")
    print(f"  Replay     {', '.join(info['symbols']) or 'no data'} from {start}, {pace}", flush=True)  # type: ignore[arg-type]


async def _serve(config: SandboxConfig, as_json: bool) -> str | None:
    """Serve until SIGINT/SIGTERM, or until the sandbox stops on its own; returns why it stopped, if so."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SandboxServer(config) as sb:
        missing = [s for s in config.symbols or () if s not in sb.market.series]
        if missing:
            raise ValueError(f"--symbols: {', '.join(missing)} not in the data (it holds "
                             f"{', '.join(sb.market.series) or 'no klines'})")
        _print(sb, as_json)
        waits = {loop.create_task(stop.wait()), loop.create_task(sb.failed.wait())}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        return sb.failure


LOOP_ENV = "KINETIC_SANDBOX_LOOP"


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The standalone exchange's event loop: ``$KINETIC_SANDBOX_LOOP`` (``asyncio`` or ``uvloop``); unset, uvloop
    when it is installed (its C loop costs less CPU per request), else asyncio's. An in-process sandbox (tests,
    ``kinetic run``) runs on its caller's loop."""
    name = os.environ.get(LOOP_ENV)
    if name == "asyncio":
        return None
    if name not in (None, "uvloop"):
        raise ValueError(f"${LOOP_ENV}={name!r}: must be 'asyncio' or 'uvloop'")
    try:
        import uvloop
    except ImportError:
        if name is None:
            return None
        raise ValueError(f"${LOOP_ENV}=uvloop: uvloop is not installed") from None
    return uvloop.new_event_loop


def main(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code (1: a state write failed, 2: bad input)."""
    try:
        check_args(args)
        config = build_config(args)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            failure = runner.run(_serve(config, args.json))
    except (OSError, ValueError) as exc:
        print(f"kinetic sandbox: {exc}", file=sys.stderr)
        return 2
    if failure is not None:
        print(f"kinetic sandbox: {failure}; stopped, nothing unwritten was acknowledged", file=sys.stderr)
        return 1
    return 0
