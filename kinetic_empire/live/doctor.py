"""Preflight checks (``kinetic doctor``, and the start of ``kinetic run``): is this venue ready to trade?

Each check says what it found and, when it fails, how to fix it. The usual failures it catches: the
wrong host, keys from another environment (demo keys on the testnet host...), a clock far off, hedge
mode, a symbol that is not trading, streams blocked by a proxy, a run folder the journal cannot write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from ..binance.errors import AuthError, BinanceError
from ..binance.rest import KEYED, BinanceRest
from ..binance.translate import venue_balances
from ..binance.venues import Venue
from ..binance.wire import stream_name
from ..core.enums import MarginType
from ..core.errors import KineticError
from .venue_setup import SettingMismatch, SymbolSettings, apply_symbol_settings

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def format_checks(checks: Iterable[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"  [{c.status:>4}] {c.name:<22} {c.detail}")
        if c.hint and c.status != OK:
            lines.append(f"         {'':<22} fix: {c.hint}")
    return "\n".join(lines)


JOURNAL_FILES = ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm")
MIN_FREE_BYTES = 16 << 20


def check_run_folder(run_dir: Path, *, min_free_bytes: int = MIN_FREE_BYTES) -> Check:
    """Can the journal be written here? Run before the journal or the venue is touched.

    A journal that cannot be written refuses every order (nothing leaves unjournaled); finding it
    here turns a run that would trade nothing into a clear refusal to start.
    """
    name = "journal folder"
    hint = "make the run folder writable (permissions, a read-only mount, free disk space), then start again"
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
        free = shutil.disk_usage(run_dir).free
    except OSError as exc:
        return Check(name, FAIL, f"{run_dir} is not writable: {exc.strerror or exc}", hint)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # the journal creates it again; a refused start leaves nothing behind
    for file in JOURNAL_FILES:
        path = run_dir / file
        if path.exists() and (not path.is_file() or not os.access(path, os.R_OK | os.W_OK)):
            return Check(name, FAIL, f"{path} is read-only or not a file", hint)
    if free < min_free_bytes:
        return Check(name, FAIL, f"only {free >> 20} MB free under {run_dir} (at least {min_free_bytes >> 20} MB)",
                     hint)
    return Check(name, OK, f"{run_dir} writable, {free >> 20} MB free")


class Doctor:
    """Runs the checks in order; later checks that need keys are skipped when the keys are bad."""

    def __init__(self, rest: BinanceRest, venue: Venue, symbols: list[str], leverage: Mapping[str, int],
                 *, margin_type: str | Callable[[str], str] = "CROSSED", stream_timeout_s: float = 15.0,
                 check_streams: bool = True, adopt: bool = False) -> None:
        self.rest = rest
        self.venue = venue
        self.symbols = symbols
        self.leverage = leverage
        # one type for every symbol, or each symbol's (risk.margin_type overrides the run's)
        self.margin_type: Callable[[str], str] = (
            (lambda _sym: margin_type) if isinstance(margin_type, str) else margin_type)
        self.stream_timeout_s = stream_timeout_s
        self.check_streams = check_streams
        self.adopt = adopt  # live.settings_mismatch: adopt -> a venue setting other than the config's only warns
        self.venue_settings: dict[str, SymbolSettings] = {}  # what the venue holds, after _symbol_settings
        self.mismatches: list[SettingMismatch] = []
        self.checks: list[Check] = []
        self.exchange_info: dict[str, Any] | None = None

    def _add(self, name: str, status: str, detail: str, hint: str = "") -> Check:
        c = Check(name, status, detail, hint)
        self.checks.append(c)
        return c

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    async def run(self) -> list[Check]:
        if not await self._reachable():
            return self.checks
        await self._time()
        await self._exchange_info()
        if not await self._keys():
            return self.checks
        await self._position_mode()
        await self._balance()
        if self.check_streams:
            await self._streams()
        else:
            await self._symbol_settings()
        return self.checks

    # ------------------------------------------------------------------------------ checks
    async def _reachable(self) -> bool:
        try:
            await self.rest.get("/fapi/v1/ping")
        except (BinanceError, OSError) as exc:
            self._add("REST reachable", FAIL, f"{self.rest.base}: {exc}",
                      "check the venue and URL (live.venue / --venue, live.rest_url) and your network or proxy")
            return False
        self._add("REST reachable", OK, self.rest.base)
        return True

    async def _time(self) -> None:
        try:
            offset = await self.rest.sync_time()
        except BinanceError as exc:
            self._add("server time", FAIL, str(exc), "the venue's /fapi/v1/time must answer")
            return
        status = OK if abs(offset) < 1000 else WARN
        self._add("server time", status, f"offset {offset:+d} ms (corrected for when signing)",
                  "sync the system clock (NTP); requests are signed with the measured offset meanwhile")

    async def _exchange_info(self) -> None:
        try:
            info = await self.rest.get("/fapi/v1/exchangeInfo")
        except BinanceError as exc:
            self._add("exchangeInfo", FAIL, str(exc), "the venue must serve /fapi/v1/exchangeInfo")
            return
        self.exchange_info = info
        status = {s.get("symbol"): s.get("status") for s in info.get("symbols", [])}
        bad = [f"{sym} ({status.get(sym) or 'unknown'})" for sym in self.symbols if status.get(sym) != "TRADING"]
        if bad:
            self._add("symbols trading", FAIL, "not trading: " + ", ".join(bad),
                      "remove these symbols from the strategies, or pick ones the venue lists as TRADING")
        else:
            self._add("symbols trading", OK, f"{len(self.symbols)} configured, all TRADING "
                      f"({len(status)} listed)")

    async def _keys(self) -> bool:
        if self.rest.credentials is None:
            self._add("API keys", FAIL, "no keys",
                      "set KINETIC_BINANCE_API_KEY and KINETIC_BINANCE_API_SECRET (environment or .env); "
                      "demo keys come from demo.binance.com > API management")
            return False
        try:
            account = await self.rest.signed("GET", "/fapi/v2/account")
        except AuthError as exc:
            hint = (
                "the secret does not belong to this key: copy both again from the same API key" if exc.code == -1022
                else "keys must belong to this venue (demo keys for binance-demo), be typed exactly, allow futures "
                "trading, and allow this IP"
            )
            self._add("API keys", FAIL, f"rejected by the venue: {exc.code} {exc.msg}", hint)
            return False
        except BinanceError as exc:
            self._add("API keys", FAIL, str(exc), "the signed account endpoint must answer")
            return False
        can_trade = account.get("canTrade", True)
        self._add("API keys", OK if can_trade else FAIL, f"key {self.rest.credentials.fingerprint} accepted"
                  + ("" if can_trade else ", but canTrade is false"), "enable futures trading for this API key")
        return True

    async def _position_mode(self) -> None:
        try:
            data = await self.rest.signed("GET", "/fapi/v1/positionSide/dual")
        except BinanceError as exc:
            self._add("position mode", FAIL, str(exc))
            return
        if data.get("dualSidePosition"):
            self._add("position mode", FAIL, "hedge mode (dualSidePosition=true)",
                      "switch the account to one-way mode (Preferences > Position Mode, or POST "
                      "/fapi/v1/positionSide/dual dualSidePosition=false with no open orders or positions)")
        else:
            self._add("position mode", OK, "one-way")

    async def _balance(self) -> None:
        try:
            rows = await self.rest.signed("GET", "/fapi/v2/balance")
        except BinanceError as exc:
            self._add("balance", FAIL, str(exc))
            return
        usdt = next((b for b in venue_balances(rows) if b.asset == "USDT"), None)
        if usdt is None:
            self._add("balance", FAIL, "no USDT balance", "fund the futures wallet (demo: the site's Reset button)")
            return
        self._add("balance", OK if usdt.available > 0 else FAIL, f"USDT wallet {usdt.wallet:f}, "
                  f"available {usdt.available:f}", "fund the futures wallet (demo: the site's Reset button)")

    async def _symbol_settings(self) -> None:
        """Margin type and leverage on every traded symbol, then read back: a venue that keeps another type or
        leverage (a position or orders under the old one) fails the check, naming symbol, wanted and actual
        (a warning when ``adopt``: the run trades under the venue's settings). These calls also produce
        user-stream events."""
        wanted = {sym: SymbolSettings(MarginType(self.margin_type(sym)), self.leverage.get(sym, 1))
                  for sym in self.symbols}
        try:
            self.venue_settings, self.mismatches = await apply_symbol_settings(self.rest, wanted)
        except (BinanceError, KineticError) as exc:
            self._add("margin and leverage", FAIL, f"{exc}",
                      "the venue must accept POST /fapi/v1/marginType and /fapi/v1/leverage and answer "
                      "GET /fapi/v2/positionRisk for the traded symbols")
            return
        if self.mismatches:
            self._add("margin and leverage", WARN if self.adopt else FAIL,
                      "; ".join(m.message for m in self.mismatches),
                      "; ".join(dict.fromkeys(m.hint for m in self.mismatches)))
        else:
            types = sorted({str(self.margin_type(sym)).lower() for sym in self.symbols})
            self._add("margin and leverage", OK, f"{' and '.join(types)}, leverage set on {len(self.symbols)} "
                      "symbol(s), read back from the venue")

    async def _streams(self) -> None:
        """Market stream: any message within the timeout. User stream: the connection itself (handshake with
        the listenKey, a ping answered, still open a moment later), because Binance may send no event at all
        for settings that did not change (-4046 for the margin type; a re-run changes nothing)."""
        key = None
        try:
            data = await self.rest.request("POST", "/fapi/v1/listenKey", security=KEYED)
            key = str(data["listenKey"])
        except (BinanceError, KeyError, TypeError) as exc:
            self._add("user stream", FAIL, f"listenKey: {exc}", "the key needs the USER_STREAM permission")
        market_url = self.venue.market_stream_url([stream_name(s, "1m") for s in self.symbols[:5]])
        market = asyncio.ensure_future(_first_message(market_url, self.stream_timeout_s))
        user = None
        if key:
            user = asyncio.ensure_future(_user_stream_alive(self.venue.user_stream_url(key), self.stream_timeout_s))
        await self._symbol_settings()
        got = await market
        if isinstance(got, str):
            self._add("market stream", OK, f"{got} within {self.stream_timeout_s:g} s")
        else:
            self._add("market stream", FAIL, f"{self.venue.ws_url}: {got}",
                      "check live.ws_url and that WebSockets are not blocked (routed path /market/stream)")
        if user is not None:
            got = await user
            if isinstance(got, str):
                self._add("user stream", OK, got)
            else:
                self._add("user stream", FAIL, f"{got}",
                          "check live.ws_url (routed path /private/ws) and the key's permissions")
        if key:
            with contextlib.suppress(BinanceError):
                await self.rest.request("DELETE", "/fapi/v1/listenKey", security=KEYED)


STREAM_ATTEMPTS = 3
"""Connections a stream check opens: one dropped before its first message is a blip, not a block."""


USER_STREAM_SETTLE_S = 1.0
"""How long the user stream must stay open after its first ping is answered (a refused key is closed at once)."""


async def _user_stream_alive(url: str, timeout: float, attempts: int = STREAM_ATTEMPTS) -> str | Exception:
    """"connected ..." if the private stream accepts the key, answers a ping and stays open; else what failed.

    A connection the venue drops (closed after the handshake, before the check is done) is opened again,
    ``attempts`` connections in all within ``timeout``, as the market check does:
    a venue drops a stream now and then and the engine's user stream reconnects. A refused or failed handshake
    (an unknown key) is not retried, and a stream that keeps closing still fails."""
    try:
        async with asyncio.timeout(timeout):
            for attempt in range(1, attempts + 1):
                try:
                    async with websockets.connect(url, open_timeout=timeout, max_size=2**22) as ws:
                        pong = await ws.ping()
                        await pong
                        try:
                            raw = await asyncio.wait_for(ws.recv(), min(USER_STREAM_SETTLE_S, timeout))
                        except TimeoutError:
                            return "connected with the listenKey, ping answered, connection open"
                    break
                except websockets.ConnectionClosed as exc:
                    if attempt == attempts:
                        return ConnectionError(f"the venue closed the user stream on {attempts} connections ({exc})")
    except TimeoutError:
        return TimeoutError(f"no connection or no pong within {timeout:g} s")
    except (OSError, websockets.WebSocketException) as exc:
        return exc
    kind = _event_type(raw)
    return f"connected with the listenKey, ping answered, {kind or 'a message'} received"


def _event_type(raw: str | bytes) -> str | None:
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    if isinstance(msg, dict) and "data" in msg:
        msg = msg["data"]
    return msg.get("e") if isinstance(msg, dict) else None


async def _first_message(url: str, timeout: float, attempts: int = STREAM_ATTEMPTS) -> str | Exception:
    """The event type of the first message on ``url`` (a string), or what went wrong (an exception). A
    connection closed before its first message is opened again (``attempts`` in all, within ``timeout``): a
    venue drops a stream now and then, and the engine's feed reconnects; a refused or failed handshake is
    not retried."""
    try:
        async with asyncio.timeout(timeout):
            for attempt in range(1, attempts + 1):
                try:
                    async with websockets.connect(url, open_timeout=timeout, max_size=2**22) as ws:
                        raw = await ws.recv()
                    break
                except websockets.ConnectionClosed as exc:
                    if attempt == attempts:
                        return ConnectionError(f"closed before a message on {attempts} connections ({exc})")
    except TimeoutError:
        return TimeoutError(f"no message within {timeout:g} s")
    except (OSError, websockets.WebSocketException) as exc:
        return exc
    try:
        json.loads(raw)
    except ValueError:
        return ValueError(f"not JSON: {str(raw)[:60]!r}")
    return f"{_event_type(raw) or 'message'} received"
