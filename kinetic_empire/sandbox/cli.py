"""``kinetic sandbox``: run the local Binance USD-M exchange on its own.

It prints the REST and WebSocket base URLs and a sandbox-only API key and secret, then replays the
klines until interrupted. ``add_arguments`` and ``main`` are what the ``kinetic`` CLI wires in;
``python -m kinetic_empire.sandbox`` runs the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..exchange.config import ExchangeConfig
from .config import FaultConfig, RateLimitConfig, SandboxConfig
from .server import SandboxServer


def _time_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _speed(text: str) -> float | None:
    low = text.lower()
    if low in ("step", "stepped", "0"):
        return None
    if low in ("max", "inf", "fast"):
        return float("inf")
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive, 'max' or 'step'")
    return value


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _partial(text: str) -> tuple[str, Decimal]:
    symbol, sep, qty = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("use SYMBOL=QTY, e.g. FILUSDT=50")
    return symbol.upper(), _decimal(qty)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's command-line options (shared by ``kinetic sandbox`` and ``python -m``)."""
    g = parser.add_argument_group("replay")
    g.add_argument("--data", nargs="+", type=Path, help="kline files or folders (default: the bundled samples)")
    g.add_argument("--speed", type=_speed, default=1.0, help="real time x N, 'max', or 'step' (default 1)")
    g.add_argument("--symbols", nargs="+", help="replay only these symbols")
    g.add_argument("--start", type=_time_ms, help="first kline (ISO time or epoch ms)")
    g.add_argument("--end", type=_time_ms, help="end of the replay (exclusive)")
    g.add_argument("--updates-per-kline", type=int, default=4, help="intra-kline price updates (default 4)")
    g.add_argument("--warmup", type=int, default=0, help="klines to play instantly at start-up")
    g.add_argument("--time-origin", choices=("data", "now"), default="data",
                   help="keep the klines' timestamps, or shift the replay to start now")
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    g.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    g.add_argument("--keys", type=Path, help="JSON key file; created with a new key when missing")
    g.add_argument("--state", type=Path, help="persist accounts, orders and positions here across restarts")
    g.add_argument("--admin", action="store_true", help="serve /sandbox-admin/* (step, faults, expiry)")
    g.add_argument("--json", action="store_true", help="print the start-up details as one JSON line")
    g.add_argument("--no-limits", action="store_true", help="report weights but never answer 429/418")
    g.add_argument("--listen-key-minutes", type=float, default=60.0, help="listenKey validity (default 60)")
    g = parser.add_argument_group("account")
    g.add_argument("--balance", type=_decimal, default=Decimal(10000), help="starting USDT balance")
    g.add_argument("--maker-fee", type=_decimal, default=Decimal("0.0002"))
    g.add_argument("--taker-fee", type=_decimal, default=Decimal("0.0005"))
    g.add_argument("--leverage", type=int, default=20, help="default leverage per symbol")
    g.add_argument("--exchange-info", type=Path, help="exchangeInfo JSON to serve (default: bundled snapshot)")
    g.add_argument("--brackets", type=Path, help="leverageBracket JSON (default: bundled)")
    g = parser.add_argument_group("faults (off unless one is given)")
    g.add_argument("--fault-seed", type=int, default=0)
    g.add_argument("--latency-ms", type=float, nargs=2, metavar=("MIN", "MAX"))
    g.add_argument("--error-executed-rate", type=float, default=0.0, help="503 after executing an order")
    g.add_argument("--error-rejected-rate", type=float, default=0.0, help="503 without executing")
    g.add_argument("--timeout-rate", type=float, default=0.0, help="hold then 408 (executed or not)")
    g.add_argument("--burst-rate", type=float, default=0.0, help="spurious 429s")
    g.add_argument("--clock-skew-ms", type=int, default=0)
    g.add_argument("--ws-drop-rate", type=float, default=0.0)
    g.add_argument("--ws-stall-rate", type=float, default=0.0)
    g.add_argument("--partial-fill", type=_partial, action="append", default=[], metavar="SYMBOL=QTY",
                   help="largest quantity filled per price update")


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
    )
    faults.enabled = any((args.latency_ms, args.error_executed_rate, args.error_rejected_rate, args.timeout_rate,
                          args.burst_rate, args.clock_skew_ms, args.ws_drop_rate, args.ws_stall_rate))
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
    print(f"  WebSocket  {info['ws']}      (/ws/<stream>, /stream?streams=, /market/ws, "
          "/private/ws?listenKey=)")
    print(f"  API key    {info['api_key']}")
    print(f"  Secret     {info['api_secret']}")
    print(f"  Replay     {', '.join(info['symbols']) or 'no data'} from {start}, {pace}", flush=True)  # type: ignore[arg-type]


async def _serve(config: SandboxConfig, as_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SandboxServer(config) as sb:
        _print(sb, as_json)
        await stop.wait()


def main(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    try:
        config = build_config(args)
        asyncio.run(_serve(config, args.json))
    except (OSError, ValueError) as exc:
        print(f"kinetic sandbox: {exc}", file=sys.stderr)
        return 2
    return 0
