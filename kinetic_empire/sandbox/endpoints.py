"""The REST endpoint table: path, security type, weight, order cost and accepted parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .accounts import Account
from .params import COMMON, Params
from .venue import SandboxVenue

NONE = "NONE"
USER_STREAM = "USER_STREAM"  # API key header, no signature
SIGNED = "SIGNED"  # TRADE and USER_DATA: key, timestamp, signature


@dataclass(slots=True)
class Ctx:
    """What a handler gets: the venue, the parsed parameters, the account (keyed endpoints)."""

    venue: SandboxVenue
    params: Params
    account: Account | None

    @property
    def acct(self) -> Account:
        assert self.account is not None
        return self.account


Handler = Callable[[Ctx], Any]
Weight = int | Callable[[Params], int]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    security: str = NONE
    weight: Weight = 1
    orders: tuple[int, int] = (0, 0)  # (10 s, 1 min) order-count cost
    params: frozenset[str] | None = None  # None: accept anything
    order_fault: bool = False  # order faults (5xx, timeouts) may hit this endpoint

    def cost(self, params: Params) -> int:
        return self.weight(params) if callable(self.weight) else self.weight


def ep(
    method: str,
    path: str,
    handler: Handler,
    security: str = NONE,
    weight: Weight = 1,
    params: str | None = "",
    *,
    orders: tuple[int, int] = (0, 0),
    order_fault: bool = False,
) -> Endpoint:
    """Shorthand: ``params`` is a space-separated list of accepted names (None accepts anything); the signing
    and timing names (:data:`.params.COMMON`) are always accepted."""
    accepted = None if params is None else frozenset(params.split()) | COMMON
    return Endpoint(method, path, handler, security, weight, orders, accepted, order_fault)


def by_symbol(with_symbol: int, without: int) -> Callable[[Params], int]:
    """Weight that depends on whether ``symbol`` was sent."""
    return lambda p: with_symbol if p.has("symbol") else without
