"""``kinetic sandbox``: options at module level (argparse and the standard library only), the server
imported in ``run``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

DESCRIPTION = """\
Run the local Binance USD-M futures exchange on its own, on 127.0.0.1: the same REST paths,
signatures, filters, error codes, weights and WebSocket streams as Binance, backed by the simulated
exchange that backtests use, replaying klines from files. It prints its REST and WebSocket URLs and a
sandbox-only API key and secret; point any Binance client (or `kinetic run --venue custom`) at them.
Faults (latency, 5xx, timeouts, 429 bursts, clock skew, dropped sockets) are off unless asked for."""

EXAMPLES = """\
  kinetic sandbox                                     # the bundled klines in real time on port 8080
  kinetic sandbox --data backtests/data --speed 60 --port 0 --json --state sb.state --keys keys.json
  kinetic sandbox --speed step --admin --market-fills next_update --legacy-routes   # a parity run's old ways
  kinetic sandbox --error-executed-rate 0.1 --unknown-visible-after-ms 1500 --updates-after-fill 2 --burst-rate 0.01"""


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
    g.add_argument("--market-fills", choices=("arrival", "next_update"), default="arrival",
                   help="arrival: a MARKET order fills at once against the book, as on Binance (default); "
                        "next_update: at the next price update, as a backtest fills (parity runs)")
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    g.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    g.add_argument("--keys", type=Path, help="JSON key file; created with a new key when missing")
    g.add_argument("--state", type=Path, metavar="FILE",
                   help="keep accounts, orders, trades and the replay position in FILE across restarts: every "
                        "change is written before its answer or stream event leaves, so a SIGKILL loses nothing "
                        "acknowledged (fsync each second: power loss can lose the last second); ids never "
                        "repeat after a restart; a corrupt FILE is refused and left as it is")
    g.add_argument("--admin", action="store_true", help="serve /sandbox-admin/* (step, faults, expiry)")
    g.add_argument("--json", action="store_true", help="print the start-up details as one JSON line")
    g.add_argument("--no-limits", action="store_true", help="report weights but never answer 429/418")
    g.add_argument("--listen-key-minutes", type=float, default=60.0, help="listenKey validity (default 60)")
    g.add_argument("--legacy-routes", action="store_true",
                   help="also carry every stream on unrouted /ws and /stream, and user data on /ws/<listenKey> "
                        "(Binance stopped both; off by default)")
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
    g.add_argument("--unknown-visible-after-ms", type=int, default=0, metavar="MS",
                   help="an order executed under an injected 5xx/timeout answers -2013 to look-ups for MS")
    g.add_argument("--updates-after-fill", type=int, default=0, metavar="N",
                   help="play N price updates between a request's fill and the next request (stop race, slippage)")
    g.add_argument("--partial-fill", type=_partial, action="append", default=[], metavar="SYMBOL=QTY",
                   help="largest quantity filled per price update")


def run(args: argparse.Namespace) -> int:
    from ..sandbox.cli import main

    return main(args)
