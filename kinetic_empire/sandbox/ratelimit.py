"""Request weights and order counts with Binance's headers, 429s and 418 bans (reference 7.1).

Windows are fixed and aligned to the wall clock (the current minute, the current 10 s), which is what
Binance's ``X-MBX-USED-WEIGHT-1M`` reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import RateLimitConfig
from .errors import ApiError


@dataclass(slots=True)
class _IpState:
    minute: int = -1
    weight: int = 0
    refused: int = 0
    banned_until: int = 0


@dataclass(slots=True)
class _OrderState:
    win10: int = -1
    count10: int = 0
    win60: int = -1
    count60: int = 0


class RateLimiter:
    def __init__(self, cfg: RateLimitConfig, weight_1m: int, orders_10s: int, orders_1m: int) -> None:
        self.cfg = cfg
        self.weight_limit = cfg.weight_1m or weight_1m
        self.orders_10s = cfg.orders_10s or orders_10s
        self.orders_1m = cfg.orders_1m or orders_1m
        self._ips: dict[str, _IpState] = {}
        self._accounts: dict[str, _OrderState] = {}
        self.ban_all_until = 0  # wall ms: a ban set from outside (admin), for every IP

    def ban(self, seconds: float, now_ms: int) -> int:
        """Ban every IP for ``seconds`` from ``now_ms``, as if each had kept sending past 429s (0 lifts every
        ban); returns the end of the ban (wall ms)."""
        self.ban_all_until = now_ms + int(seconds * 1000) if seconds > 0 else 0
        if seconds <= 0:
            for st in self._ips.values():
                st.banned_until = 0
        return self.ban_all_until

    def weight(self, ip: str, weight: int, now_ms: int) -> int:
        """Charge ``weight`` to ``ip``; returns the minute's total or raises 429/418."""
        st = self._ips.get(ip)
        if st is None:
            st = self._ips[ip] = _IpState()
        minute = now_ms // 60_000
        if self.ban_all_until > st.banned_until:
            st.banned_until = self.ban_all_until
        if st.banned_until > now_ms:
            raise self._banned(ip, st, now_ms)
        if minute != st.minute:
            st.minute, st.weight, st.refused = minute, 0, 0
        st.weight += weight
        if self.cfg.enforce and st.weight > self.weight_limit:
            st.refused += 1
            if st.refused > self.cfg.ban_after:
                st.banned_until = now_ms + int(self.cfg.ban_seconds * 1000)
                raise self._banned(ip, st, now_ms)
            retry = math.ceil(((minute + 1) * 60_000 - now_ms) / 1000)
            raise ApiError(
                -1003,
                f"Too many requests; current limit is {self.weight_limit} requests per minute. Please use the "
                "websocket for live updates to avoid polling the API.",
                429,
                {"Retry-After": str(max(1, retry)), "X-MBX-USED-WEIGHT-1M": str(st.weight)},
            )
        return st.weight

    def used(self, ip: str, now_ms: int) -> int:
        st = self._ips.get(ip)
        return st.weight if st is not None and st.minute == now_ms // 60_000 else 0

    def _banned(self, ip: str, st: _IpState, now_ms: int) -> ApiError:
        retry = math.ceil((st.banned_until - now_ms) / 1000)
        return ApiError(
            -1003,
            f"Way too many requests; IP({ip}) banned until {st.banned_until}. Please use the websocket for live "
            "updates to avoid bans.",
            418,
            {"Retry-After": str(max(1, retry))},
        )

    def orders(self, key: str, n10: int, n60: int, now_ms: int) -> tuple[int, int]:
        """Count new orders for an account; returns (10 s, 1 min) totals or raises 429 -1015."""
        st = self._accounts.get(key)
        if st is None:
            st = self._accounts[key] = _OrderState()
        w10, w60 = now_ms // 10_000, now_ms // 60_000
        if w10 != st.win10:
            st.win10, st.count10 = w10, 0
        if w60 != st.win60:
            st.win60, st.count60 = w60, 0
        if self.cfg.enforce:
            if st.count10 + n10 > self.orders_10s:
                retry = math.ceil(((w10 + 1) * 10_000 - now_ms) / 1000)
                msg = f"Too many new orders; current limit is {self.orders_10s} orders per TEN_SECONDS."
                raise ApiError(-1015, msg, 429, {"Retry-After": str(max(1, retry))})
            if st.count60 + n60 > self.orders_1m:
                retry = math.ceil(((w60 + 1) * 60_000 - now_ms) / 1000)
                raise ApiError(-1015, f"Too many new orders; current limit is {self.orders_1m} orders per MINUTE.",
                               429, {"Retry-After": str(max(1, retry))})
        st.count10 += n10
        st.count60 += n60
        return st.count10, st.count60
