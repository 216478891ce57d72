"""Fault injection, deterministic under a seed: each fault kind draws from its own RNG, so turning one
fault on does not change when another fires, and the same requests in the same order fail the same way."""

from __future__ import annotations

import random
from collections import Counter

from .config import FaultConfig

KINDS = ("latency", "order", "burst", "ws", "listen_key")


class Faults:
    def __init__(self, cfg: FaultConfig) -> None:
        self.cfg = cfg
        self.reseed()
        self._ws_count = 0
        self.counts: Counter[str] = Counter()  # faults injected, by kind (a soak reports them)
        self.hidden_until: dict[tuple[str, int], int] = {}  # (api key, wire order id) -> wall ms it becomes visible

    def note(self, kind: str) -> None:
        self.counts[kind] += 1

    def reseed(self) -> None:
        self._rng = {kind: random.Random(f"{self.cfg.seed}:{kind}") for kind in KINDS}

    @property
    def on(self) -> bool:
        return self.cfg.enabled

    def skew_ms(self) -> int:
        return self.cfg.clock_skew_ms if self.cfg.enabled else 0

    def latency_s(self) -> float:
        lo, hi = self.cfg.latency_ms
        if not self.cfg.enabled or hi <= 0:
            return 0.0
        return self._rng["latency"].uniform(lo, hi) / 1000.0

    def burst(self) -> bool:
        hit = self.cfg.enabled and self.cfg.rate_limit_burst_rate > 0 and (
            self._rng["burst"].random() < self.cfg.rate_limit_burst_rate
        )
        if hit:
            self.note("429-burst")
        return hit

    def order_fault(self) -> str | None:
        """None, or one of: 'error-executed', 'error-rejected', 'timeout-executed', 'timeout-rejected'."""
        c = self.cfg
        if not c.enabled or (c.error_executed_rate + c.error_rejected_rate + c.timeout_rate) <= 0:
            return None
        rng = self._rng["order"]
        r = rng.random()
        kind: str | None = None
        if r < c.error_executed_rate:
            kind = "error-executed"
        elif r - c.error_executed_rate < c.error_rejected_rate:
            kind = "error-rejected"
        elif r - c.error_executed_rate - c.error_rejected_rate < c.timeout_rate:
            kind = "timeout-executed" if rng.random() < c.timeout_executed_share else "timeout-rejected"
        if kind is not None:
            self.note(kind)
        return kind

    def hide(self, api_key: str, order_id: int, now_ms: int) -> None:
        """An order executed under an unknown-outcome fault: not found by id until the configured delay."""
        if self.cfg.unknown_visible_after_ms > 0:
            self.hidden_until[(api_key, order_id)] = now_ms + self.cfg.unknown_visible_after_ms

    def hidden(self, api_key: str, order_id: int, now_ms: int) -> bool:
        until = self.hidden_until.get((api_key, order_id))
        if until is None:
            return False
        if now_ms >= until:
            del self.hidden_until[(api_key, order_id)]
            return False
        return True

    def ws_rng(self) -> random.Random | None:
        """An RNG for one new WebSocket connection (None when no WS fault is on)."""
        c = self.cfg
        if not c.enabled or (c.ws_drop_rate <= 0 and c.ws_stall_rate <= 0):
            return None
        self._ws_count += 1
        return random.Random(f"{c.seed}:ws:{self._ws_count}")

    def expire_listen_keys(self) -> bool:
        c = self.cfg
        hit = c.enabled and c.listen_key_early_expiry_rate > 0 and (
            self._rng["listen_key"].random() < c.listen_key_early_expiry_rate
        )
        if hit:
            self.note("listen-key-expiry")
        return hit
