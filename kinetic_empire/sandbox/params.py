"""Request parameters read the way Binance reads them: from the raw query string and form body.

Every reader raises Binance's error for a missing or malformed value, so handlers stay short and
validation order (mandatory -> enum -> value) matches the reference's section 5.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar
from urllib.parse import parse_qsl

from .errors import CLIENT_ID_RANGE, DECIMAL_RANGE, INT_RANGE, ApiError, illegal, invalid, mandatory, not_all_read

_DECIMAL = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT = re.compile(r"^-?[0-9]{1,20}$")
_CLIENT_ID = re.compile(CLIENT_ID_RANGE)

# Parameters every endpoint reads (signing and timing), never counted as unknown.
COMMON = frozenset({"timestamp", "recvWindow", "signature"})

E = TypeVar("E", bound=StrEnum)


def parse_pairs(query: str, body: str) -> dict[str, str]:
    """Query and body parameters; the query's value wins when a name is in both (reference 2.2)."""
    out: dict[str, str] = {}
    if body:
        for k, v in parse_qsl(body, keep_blank_values=True):
            out.setdefault(k, v)
    if query:
        q: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            q.setdefault(k, v)
        out.update(q)
    return out


class Params:
    """Typed access to one request's parameters, with Binance's errors."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def check_known(self, allowed: frozenset[str] | None) -> None:
        """Reject names the endpoint does not read (-1104), as Binance does."""
        if allowed is None:
            return
        unknown = [k for k in self.data if k not in allowed and k not in COMMON]
        if unknown:
            sent = len(self.data)
            raise not_all_read(sent - len(unknown), sent)

    def has(self, name: str) -> bool:
        return self.data.get(name, "") != ""

    def str(self, name: str, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise mandatory(name)
            return None
        return value

    def req(self, name: str) -> str:
        value = self.str(name, True)
        assert value is not None
        return value

    def decimal(self, name: str, required: bool = False, *, positive_only: bool = False) -> Decimal | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        if not _DECIMAL.match(raw):
            raise illegal(name, DECIMAL_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
            raise illegal(name, DECIMAL_RANGE) from None

    def int(self, name: str, required: bool = False, lo: int | None = None, hi: int | None = None) -> int | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        if not _INT.match(raw):
            raise illegal(name, INT_RANGE)
        value = int(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise invalid(name)
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.str(name)
        if raw is None:
            return default
        low = raw.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        raise invalid(name)

    def enum(self, name: str, cls: type[E], code: int, msg: str, required: bool = False) -> E | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        try:
            return cls(raw)
        except ValueError:
            raise ApiError(code, msg) from None

    def choice(self, name: str, options: Iterable[str], required: bool = False) -> str | None:
        raw = self.str(name, required)
        if raw is not None and raw not in options:
            raise invalid(name)
        return raw

    def client_id(self, name: str) -> str | None:
        raw = self.str(name)
        if raw is not None and not _CLIENT_ID.match(raw):
            raise illegal(name, CLIENT_ID_RANGE)
        return raw

    def limit(self, default: int, maximum: int) -> int:
        value = self.int("limit")
        if value is None:
            return default
        if value <= 0:
            raise invalid("limit")
        return min(value, maximum)
