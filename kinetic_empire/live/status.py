"""The operator's view of a live run: refreshed in place on a terminal, plain periodic lines otherwise.

It only reads the engine's objects (portfolio, feed, streams, risk manager, active alerts: one line each,
until cleared); it never publishes. Its
refresh timer and the local time it shows come from the injected clock (by default the REST client's).
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

from ..core.clock import Clock

if TYPE_CHECKING:
    from .app import LiveEngine


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) if ms else "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _num(d: Decimal | float, places: int = 2, sign: bool = False) -> str:
    return f"{float(d):{'+' if sign else ''},.{places}f}"


class StatusView:
    def __init__(self, engine: LiveEngine, out: TextIO | None = None, *, interval_s: float = 1.0,
                 plain_every_s: float = 15.0, tty: bool | None = None, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or engine.rest.clock
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.plain_every_s = plain_every_s
        self._shown = 0

    async def run(self) -> None:
        last_plain: float | None = None
        while True:
            await self.clock.sleep(self.interval_s)
            if self.tty:
                self.redraw()
            elif last_plain is None or self.clock.monotonic() - last_plain >= self.plain_every_s:
                last_plain = self.clock.monotonic()
                self.out.write(self.line() + "\n")
                self.out.flush()

    def redraw(self) -> None:
        lines = self.lines()
        if self._shown:
            self.out.write(f"\x1b[{self._shown}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self._shown = len(lines)

    def clear(self) -> None:
        if self.tty and self._shown:
            self.out.write(f"\x1b[{self._shown}F\x1b[J")
            self.out.flush()
            self._shown = 0

    # ------------------------------------------------------------------------------ content
    def _totals(self) -> tuple[Decimal, Decimal, int, Decimal]:
        p = self.engine.portfolio
        trades = p.trades
        net = sum((t.net_pnl for t in trades), Decimal(0))
        return p.equity(), p.wallet_balance(), len(trades), net

    def _risk(self) -> str:
        state = self.engine.risk.state.value
        return f"{state} (feed stale)" if self.engine.health.paused_for_stale else state

    def lines(self) -> list[str]:
        e = self.engine
        equity, wallet, n_trades, net = self._totals()
        up = self.clock.now_ms() / 1000 - e.health.started_wall
        feed, user, rest = e.feed, e.user, e.rest.stats
        out = [
            f"Kinetic Empire live  run {e.run_id}  venue {e.venue.name} ({e.venue.rest_url})",
            f"market time {_utc(e.clock.now_ms())} UTC   up {int(up // 3600):02d}:{int(up % 3600 // 60):02d}:"
            f"{int(up % 60):02d}   risk {self._risk()}",
            f"equity {_num(equity)} USDT   wallet {_num(wallet)}   uPnL {_num(equity - wallet, sign=True)}   "
            f"closed trades {n_trades} (net {_num(net, sign=True)})   initial {_num(e.initial_balance)}",
            f"market stream {'connected' if feed.connected else 'DOWN'}: {feed.published} klines, "
            f"{feed.backfilled} backfilled in {feed.gaps} gaps, {feed.reconnects} reconnects   "
            f"user stream {'connected' if user.connected else 'DOWN'}: {e.translator.events_seen} events, "
            f"{user.reconnects} reconnects, {user.keys_created} listenKeys",
            f"orders placed {e.execution.placed}, rejected {e.execution.rejected}   REST {rest.requests} requests, "
            f"weight {rest.used_weight}/{e.rest.weight_limit}, {rest.retries} retries, "
            f"{rest.rate_limited} rate-limited",
            "",
            f"{'symbol':<12}{'tf':<5}{'last kline':>11}{'position':>14}{'entry':>12}{'last':>12}{'uPnL':>12}"
            f"  open orders",
        ]
        open_orders: dict[str, list[str]] = {}
        for st in e.translator.open_orders():
            if st.accepted:
                open_orders.setdefault(st.symbol, []).append(st.order_type.value if st.order_type else "?")
        for runner in e.runners:
            sym, tf = runner.symbol, runner.timeframe
            pos = e.portfolio.position(sym)
            last = e.portfolio.last_price(sym)
            upnl = pos.quantity * (Decimal(repr(last)) - pos.entry_price) if pos.quantity and last else Decimal(0)
            orders = open_orders.get(sym, [])
            halted = "  HALTED" if runner.halted else ""
            out.append(
                f"{sym:<12}{tf:<5}{_age(e.feed.age_s((sym, tf))):>11}{_num(pos.quantity, 3, sign=True):>14}"
                f"{_num(pos.entry_price, 4):>12}{last:>12.4f}{_num(upnl, sign=True):>12}"
                f"  {len(orders)} {' '.join(orders)}{halted}"
            )
        if e.health.stale_topics:
            out.append(f"stale: {', '.join(e.health.stale_topics)}")
        if e.execution.last_error:
            out.append(f"last venue error: {e.execution.last_error}")
        out += e.alerts.lines()  # one line each, until cleared
        return out

    def line(self) -> str:
        e = self.engine
        equity, _wallet, n_trades, net = self._totals()
        positions = " ".join(f"{p.symbol}:{_num(p.quantity, 3, sign=True)}" for p in e.portfolio.positions()) or "flat"
        local = time.strftime("%H:%M:%S", time.localtime(self.clock.now_ms() / 1000))
        return (f"{local} market {_utc(e.clock.now_ms())} equity {_num(equity)} "
                f"trades {n_trades} net {_num(net, sign=True)} positions {positions} risk {self._risk()} "
                f"feed {'ok' if e.feed.connected else 'DOWN'} user {'ok' if e.user.connected else 'DOWN'} "
                f"klines {e.feed.published} orders {e.execution.placed}/{e.execution.rejected} rejected"
                + "".join(f"\n{line}" for line in e.alerts.lines()))
