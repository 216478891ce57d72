"""A seeded schedule of forced faults, by market time (kline index), so that one seed gives one schedule.

Random per-request faults (the sandbox's rates) exercise a recovery path only when a request happens to
meet them, so a short run may never see one. The schedule forces every path a set number of times per
simulated day instead. Each event is due at a kline; the driver carries it out when the venue's market
time reaches it (late, and counted as late, when an engine restart held the driver up).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# what each kind does is in soak.py (_Driver.do); the order here is the order of the report
RESTARTS = ("kill", "kill-cancel-stop", "disk-full", "sandbox-kill")  # kinds that restart a process
KINDS = (
    "kill",  # SIGKILL the engine at a seeded moment, resume it
    "kill-cancel-stop",  # SIGKILL while a position holds its stop, cancel the stop while down, resume
    "second-engine",  # start a second engine on the running run: the run lock must refuse it
    "disk-full",  # the journal's writes fail (RLIMIT_FSIZE of the engine) for a while; then fixed and resumed
    "error-executed",  # next order/cancel: 503 after executing it
    "error-rejected",  # next order/cancel: 503 without executing it
    "timeout-executed",  # next order/cancel: held, then 408, executed
    "timeout-rejected",  # next order/cancel: held, then 408, not executed
    "burst-429",  # next request: 429 with Retry-After
    "ws-drop",  # every WebSocket dropped at once
    "ws-stall",  # streams reconnect into stalls (messages held for seconds) for a while
    "listen-key-expiry",  # every listenKey expired at once
    "slow-venue",  # every request delayed 1.5-2.5 s for a while: a stop may meet a price already through it
    "stop-through",  # the next stop placement is held while the price runs through its trigger (-2021)
    "sandbox-kill",  # SIGKILL the sandbox and restart it from its state (needs a durable sandbox)
)


@dataclass(frozen=True, slots=True)
class Event:
    kline: int  # due when market time reaches this kline (0 = the first traded kline)
    kind: str
    seq: int  # position in the schedule


def build_schedule(seed: int, klines: int, per_day: float, kinds: tuple[str, ...] = KINDS, *,
                   lead: int = 15, tail: int = 60) -> list[Event]:
    """Every kind ``per_day`` times per 1440 klines (at least once), at seeded klines between ``lead`` and
    ``klines - tail``; each kind spread over equal slices of the run so its events never bunch up."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown soak event kind(s): {', '.join(sorted(unknown))}")
    rng = random.Random(f"soak-schedule:{seed}")
    span = max(1, klines - lead - tail)
    out: list[tuple[int, int, str]] = []
    for order, kind in enumerate(kinds):
        n = max(1, round(per_day * klines / 1440))
        for i in range(n):
            lo = lead + span * i // n
            hi = lead + span * (i + 1) // n
            out.append((rng.randrange(lo, max(lo + 1, hi)), order, kind))
    out.sort()
    return [Event(k, kind, i) for i, (k, _o, kind) in enumerate(out)]


def format_schedule(events: list[Event]) -> str:
    return ", ".join(f"{e.kline}:{e.kind}" for e in events)


__all__ = ["KINDS", "RESTARTS", "Event", "build_schedule", "format_schedule"]
