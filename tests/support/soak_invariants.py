"""Invariants between a run journal and the venue, checked again and again while a soak runs, and once at the end.

Why continuously: a duplicate order, a missing stop or a lost fill can be gone by the end of a run (the
position closed, a later reconciliation papered over it), so an audit at the end alone passes them.

Two sorts of check. *Strict* ones hold at every instant once the reads are ordered (journal, then venue,
then journal again): a venue order must already be journaled (the journal is a gate), a journaled fill or
final state must already be true on the venue, a client id is used once, an intent has one effect.
*Bounded* ones may be false for a while and must become true within a bound of engine up-time (time with an
engine trading; a killed engine cannot fix anything): a venue fill reaches the journal, an open position
that asked for a stop has one on the venue, the journal's positions and wallet match the venue's. At the
final check (engine stopped cleanly after a quiet spell) every bounded check is strict.

Each violation is kept with its time, kind and details, once per episode (one missing stop is one violation,
however many polls see it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .soak_journal import JournalView
from .soak_venue import VenueView

KINDS = (
    "duplicate-client-id",  # one client id on two venue orders, or requested twice in the journal
    "duplicate-effect",  # one intent executed twice (same type, side, reduce-only), or two live stops for it
    "order-not-journaled",  # on the venue but not (yet) in the journal: sent before the journal write
    "fill-not-journaled",  # a venue fill the journal has not recorded within the bound
    "fill-not-on-venue",  # a journaled fill the venue does not have
    "duplicate-fill",  # one venue fill journaled twice
    "state-disagrees",  # journal says canceled/expired/rejected, venue says live
    "unprotected",  # a position that asked for a stop without a live stop beyond the bound
    "position-disagrees",  # journal position != venue position beyond the bound
    "wallet-disagrees",  # journal wallet != venue wallet beyond the bound
    "reconcile-flag",  # a reconciliation found a position difference its fills do not explain
    "second-engine",  # a second engine on a running run was not refused by the run lock
    "engine-exit",  # an engine exited by itself, or did not come back after a restart
)


@dataclass(frozen=True, slots=True)
class Violation:
    at_s: float  # seconds since the soak began
    market_ms: int
    kind: str
    detail: str

    def format(self) -> str:
        return f"[{self.at_s:7.1f} s, market {self.market_ms}] {self.kind}: {self.detail}"


@dataclass
class Invariants:
    """The soak's running judge. ``stop_bound_s``: up-time a position may go without its stop;
    ``grace_s``: up-time a fill, position or wallet may take to reach the journal."""

    stop_symbols: tuple[str, ...]
    t0: float
    stop_bound_s: float = 30.0
    grace_s: float = 40.0
    violations: list[Violation] = field(default_factory=list)
    checks: int = 0
    _keys: set[tuple[Any, ...]] = field(default_factory=set)
    _since: dict[tuple[Any, ...], float] = field(default_factory=dict)
    _up: list[list[float]] = field(default_factory=list)  # [start, end] of each engine's trading time (end=inf)

    # ------------------------------------------------------------------------------ engine up-time
    def engine_up(self, now: float) -> None:
        if not self._up or self._up[-1][1] != float("inf"):
            self._up.append([now, float("inf")])

    def engine_down(self, now: float) -> None:
        if self._up and self._up[-1][1] == float("inf"):
            self._up[-1][1] = now

    def uptime(self, since: float, now: float) -> float:
        return sum(max(0.0, min(end, now) - max(start, since)) for start, end in self._up)

    # ------------------------------------------------------------------------------ recording
    def record(self, kind: str, detail: str, now: float, market_ms: int, key: tuple[Any, ...] | None = None) -> None:
        """Record a violation once per ``key`` (default: kind and detail)."""
        k = (kind, *(key if key is not None else (detail,)))
        if k in self._keys:
            return
        self._keys.add(k)
        self.violations.append(Violation(round(now - self.t0, 1), market_ms, kind, detail))

    def _bounded(self, key: tuple[Any, ...], bad: bool, bound: float, now: float, final: bool) -> bool:
        """True once a condition has been bad for longer than ``bound`` of up-time (at once when ``final``)."""
        if not bad:
            self._since.pop(key, None)
            return False
        since = self._since.setdefault(key, now)
        return final or self.uptime(since, now) > bound

    def counts(self) -> dict[str, int]:
        return dict(Counter(v.kind for v in self.violations))

    # ------------------------------------------------------------------------------ the checks
    def check(self, before: JournalView, venue: VenueView, after: JournalView, now: float, market_ms: int,
              *, final: bool = False) -> None:
        """One round: ``before`` read before ``venue``, ``after`` read after it (same journal)."""
        self.checks += 1
        rec = self.record
        # strict: client ids once, every venue order journaled before it left
        for cid in after.repeated:
            rec("duplicate-client-id", f"journal requests {cid} twice", now, market_ms)
        for rows, id_key in ((venue.orders, "clientOrderId"), (venue.algos, "clientAlgoId")):
            for cid, n in Counter(r[id_key] for r in rows).items():
                if n > 1:
                    rec("duplicate-client-id", f"venue has {n} orders with client id {cid}", now, market_ms)
            for r in rows:
                if r[id_key] not in after.requests:
                    rec("order-not-journaled", f"venue order {r[id_key]} ({r['symbol']} {r['side']} "
                        f"{r.get('type') or r.get('orderType')}) has no journal row", now, market_ms)
        self._effects(venue, after, now, market_ms)
        # strict: what the journal says happened has happened on the venue
        venue_fills = {(t["orderId"], t["id"]) for t in venue.trades}
        for key, n in before.fills.items():
            if key[1] and key not in venue_fills:
                rec("fill-not-on-venue", f"journal fill order {key[0]} trade {key[1]} is not on the venue", now,
                    market_ms)
            if n > 1:
                rec("duplicate-fill", f"fill order {key[0]} trade {key[1]} journaled {n} times", now, market_ms)
        live = venue.live_client_ids()
        for cid, state in before.terminal.items():
            if cid in live:
                rec("state-disagrees", f"{cid}: journal {state}, venue live", now, market_ms)
        for seq, plan in after.reconciles:
            for a in plan.get("actions", []):
                if a.get("kind") == "flag":
                    rec("reconcile-flag", f"{plan.get('reason')} reconciliation: {a.get('symbol')} believed "
                        f"{a.get('believed')} venue {a.get('exchange')}", now, market_ms, key=(seq, a.get("symbol")))
        # bounded: fills reach the journal, positions keep their stop, journal and venue agree
        for t in venue.trades:
            key = (t["orderId"], t["id"])
            if self._bounded(("fill", key), key not in after.fills, self.grace_s, now, final):
                rec("fill-not-journaled", f"{t['symbol']} {t['side']} {t['qty']} @ {t['price']} (order {key[0]}, "
                    f"trade {key[1]}) not journaled", now, market_ms, key=key)
        for sym, qty in venue.positions.items():
            side = "SELL" if qty > 0 else "BUY"
            bad = sym in self.stop_symbols and qty != 0 and not venue.stops(sym, side)
            if self._bounded(("stop", sym), bad, self.stop_bound_s, now, final):
                rec("unprotected", f"{sym} position {qty} without a live stop for over {self.stop_bound_s:g} s "
                    "of engine up-time" if not final else f"{sym} position {qty} without a stop at the end",
                    now, market_ms, key=(sym, self._since.get(("stop", sym))))
            believed = after.positions.get(sym, Decimal(0))
            if self._bounded(("pos", sym), believed != qty, self.grace_s, now, final):
                rec("position-disagrees", f"{sym} journal {believed} venue {qty}", now, market_ms,
                    key=(sym, self._since.get(("pos", sym))))
        if self._bounded(("wallet",), after.wallet != venue.wallet, self.grace_s, now, final):
            rec("wallet-disagrees", f"journal {after.wallet} venue {venue.wallet}", now, market_ms,
                key=(self._since.get(("wallet",)),))

    def _effects(self, venue: VenueView, journal: JournalView, now: float, market_ms: int) -> None:
        """By effect: one intent never gets two executed orders of one kind, nor two live stops (a reversal is
        one intent with a reduce-only exit and an entry of the same side: two effects)."""
        executed: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for o in venue.orders:
            req = journal.requests.get(o["clientOrderId"])
            if req is not None and Decimal(o["executedQty"]) > 0:
                executed[(req.intent_id, req.order_type.value, req.side.value, str(req.reduce_only))].append(
                    o["clientOrderId"])
        live: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for a in venue.algos:
            req = journal.requests.get(a["clientAlgoId"])
            if req is not None and a["algoStatus"] == "NEW":
                live[(req.intent_id, a["orderType"])].append(a["clientAlgoId"])
        for k, v in executed.items():
            if len(v) > 1:
                self.record("duplicate-effect", f"intent {k[0]} executed {k[1]} {k[2]} {len(v)} times: {v}", now,
                            market_ms, key=k)
        for k, v in live.items():
            if len(v) > 1:
                self.record("duplicate-effect", f"intent {k[0]} has {len(v)} live {k[1]}: {v}", now, market_ms,
                            key=("live", *k))


__all__ = ["KINDS", "Invariants", "Violation"]
