"""Resuming a run from its journal: check the file before trusting it, then rebuild what the engine believed.

Rule for an *unclean stop*: the journal has no ``ended_wall_ms`` marker (written only by a clean shutdown)
and the process that wrote it (``meta.pid``) is gone. ``kinetic run --run-id X`` on such a journal resumes
it automatically; ``--resume X`` resumes any journal, clean or not, once these checks pass.

Every check runs read-only before anything is written: a bad journal is reported with what to do and is
never overwritten.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core import events as ev
from ..core.enums import OrderStatus, OrderType, Side
from ..core.errors import KineticError
from ..core.processes import pid_alive
from .journal import SCHEMA_VERSION, read_events, read_meta

ZERO = Decimal(0)


class JournalError(KineticError):
    """A journal that cannot be resumed: missing, corrupt, from another version, venue or account."""


def check_journal(path: Path, *, rest_url: str | None = None, account: str | None = None) -> dict[str, Any]:
    """The journal's meta if it can be resumed by this version on this venue and account; JournalError if not."""
    path = Path(path)
    run = path.parent.name
    if not path.is_file():
        raise JournalError(f"no run {run!r}: {path} does not exist. List runs with `ls {path.parent.parent}`; "
                           "start a new run without --resume")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            db.close()
        if not ok or ok[0] != "ok" or not {"meta", "events"} <= tables:
            raise sqlite3.DatabaseError(ok[0] if ok else "no tables")
        meta = read_meta(path)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"journal {path} is corrupt or truncated ({exc}); it was left untouched. "
                           "The venue still holds the orders and positions: start a new run (another --run-id); "
                           "its first reconciliation adopts or flags them") from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise JournalError(f"journal {path} has schema version {version!r}; this version of kinetic writes "
                           f"{SCHEMA_VERSION}. `kinetic report {run}` can still read it; to keep trading start a "
                           "new run (another --run-id) or resume with the kinetic version that wrote it")
    if rest_url is not None and meta.get("rest_url") != rest_url:
        raise JournalError(f"run {run} traded on {meta.get('venue')} at {meta.get('rest_url')}, not {rest_url}: "
                           "its orders are not on this venue. Resume with the same --venue/--rest-url, or start "
                           "a new run")
    if account is not None and str(meta.get("account", "")) != account:  # str: older journals stored it raw
        raise JournalError(f"run {run} belongs to another account (key fingerprint {meta.get('account')!r}, "
                           f"these keys are {account!r}). Resume with the keys that started it, or start a new run")
    return meta


def unclean_stop(meta: dict[str, Any]) -> bool:
    """No clean-shutdown marker, and the writer is gone (a live writer means the run is still going)."""
    return "ended_wall_ms" not in meta and not (pid_alive(meta.get("pid")) and meta.get("pid") != os.getpid())


@dataclass
class JournalView:
    """What the journal says the engine believed when it stopped."""

    meta: dict[str, Any]
    requests: dict[str, ev.OrderRequest] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    terminal: set[str] = field(default_factory=set)
    filled: dict[str, Decimal] = field(default_factory=dict)
    fills: set[tuple[str, int]] = field(default_factory=set)
    positions: dict[str, Decimal] = field(default_factory=dict)  # the last update plus the fills after it
    wallet: Decimal | None = None
    intents: dict[str, ev.OrderIntent] = field(default_factory=dict)
    symbol_states: dict[str | None, ev.TradingStateChanged] = field(default_factory=dict)
    day_start_wallet: dict[int, Decimal] = field(default_factory=dict)
    last_ts: int = 0
    events: int = 0

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> JournalView:
        view = cls(meta)
        position_ts: dict[str, int] = {}  # the time of each symbol's last position update
        for e in read_events(path):
            view.events += 1
            view.last_ts = max(view.last_ts, e.ts_event)
            if isinstance(e, ev.OrderIntent):
                view.intents[e.intent_id] = e
            elif isinstance(e, ev.OrderRequest):
                view.requests[e.client_order_id] = e
            elif isinstance(e, ev.OrderAccepted):
                view.accepted.add(e.client_order_id)
            elif isinstance(e, ev.OrderFilled):
                view.fills.add((e.symbol, e.trade_id))
                if e.ts_event > position_ts.get(e.symbol, -1):  # a fill the last position update did not include
                    signed = e.quantity if e.side is Side.BUY else -e.quantity
                    view.positions[e.symbol] = view.positions.get(e.symbol, ZERO) + signed
                view.filled[e.client_order_id] = view.filled.get(e.client_order_id, ZERO) + e.quantity
                if e.status is OrderStatus.FILLED:
                    view.terminal.add(e.client_order_id)
            elif isinstance(e, ev.OrderCanceled | ev.OrderExpired | ev.OrderRejected):
                view.terminal.add(e.client_order_id)
            elif isinstance(e, ev.PositionChanged):
                view.positions[e.symbol] = e.quantity
                position_ts[e.symbol] = e.ts_event
            elif isinstance(e, ev.BalanceChanged):
                view.wallet = e.wallet_balance
                view.day_start_wallet.setdefault(e.ts_event // 86_400_000, e.wallet_balance)
            elif isinstance(e, ev.TradingStateChanged):
                view.symbol_states[e.symbol] = e
        return view

    def open_orders(self) -> list[ev.OrderRequest]:
        """Requests with no final state in the journal: on the venue, done while we were down, or never sent."""
        return [r for cid, r in self.requests.items() if cid not in self.terminal]

    def unknown_orders(self) -> list[ev.OrderRequest]:
        """Committed but never acknowledged: "sent, unknown" until looked up by client id."""
        return [r for r in self.open_orders() if r.client_order_id not in self.accepted]

    def open_exits(self) -> list[ev.OrderRequest]:
        """Reduce-only market exits with no final state: in flight until the venue answers (risk/exits.py)."""
        return [r for r in self.open_orders() if r.reduce_only and not r.close_position
                and r.order_type is OrderType.MARKET and r.quantity is not None]

    def pending_intents(self) -> list[ev.OrderIntent]:
        """Intents that never became an order request (the strategy decides again on the next kline)."""
        asked = {r.intent_id for r in self.requests.values()}
        return [i for iid, i in self.intents.items() if iid not in asked]

    def last_seq(self, prefix: str) -> int:
        """The highest intent number a runner with ``prefix`` has used, so new intent ids never repeat
        (order requests count too: their intent's own row may be the one a failed write lost; and so do the
        client ids of final states: a command the journal refused has only its OrderRejected row)."""
        best = 0
        for iid in {*self.intents, *(r.intent_id for r in self.requests.values())}:
            head, _, n = iid.rpartition("-")
            if head == prefix and n.isdigit():
                best = max(best, int(n))
        lead = prefix + "-"
        for cid in {*self.terminal, *self.accepted, *self.filled}:  # client ids: <prefix>-<n>-<suffix>
            if cid.startswith(lead):
                n = cid[len(lead):].split("-", 1)[0]
                if n.isdigit():
                    best = max(best, int(n))
        return best

    def summary(self) -> str:
        pos = ", ".join(f"{s} {q}" for s, q in sorted(self.positions.items()) if q) or "flat"
        return (f"journal: {self.events} events, {len(self.requests)} order requests, "
                f"{len(self.open_orders())} open ({len(self.unknown_orders())} sent-unknown, "
                f"{len(self.open_exits())} exits in flight), "
                f"{len(self.pending_intents())} intents without an order, positions {pos}, wallet {self.wallet}")


__all__ = ["JournalError", "JournalView", "check_journal", "pid_alive", "unclean_stop"]
