"""Request parameters read the way Binance reads them: from the raw query string and form body.

Every reader raises Binance's error for a missing or malformed value, so handlers stay short and
validation order (mandatory -> enum -> value) matches the reference's section 5.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeAlias, TypeVar
from urllib.parse import parse_qsl

from .errors import CLIENT_ID_RANGE, DECIMAL_RANGE, INT_RANGE, ApiError, illegal, invalid, mandatory, not_all_read

_DECIMAL = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT = re.compile(r"^-?[0-9]{1,20}$")
_CLIENT_ID = re.compile(CLIENT_ID_RANGE)

# Parameters every endpoint reads (signing and timing), never counted as unknown.
COMMON = frozenset({"timestamp", "recvWindow", "signature"})

E = TypeVar("E", bound=StrEnum)
# the readers below are named str/int/bool; annotations inside the class use these aliases
_Str: TypeAlias = str
_Int: TypeAlias = int
_Bool: TypeAlias = bool


def parse_pairs(query: str, body: str) -> dict[str, str]:
    """Query and body parameters; the query's value wins when a name is in both (reference 2.2).

    A name given twice in the query, or twice in the body, is Binance's -1101 "Duplicate values for a
    parameter detected." (Binance's error-code list), not a silent first-or-last pick."""
    out = _unique(body) if body else {}
    if query:
        out.update(_unique(query))
    return out


def _unique(text: str) -> dict[str, str]:
    """``parse_qsl(text, keep_blank_values=True)`` into a dict, refusing duplicates.

    Signed requests are plain ``name=value`` pairs almost always: those are split here directly, and
    only text with escapes (``%`` or ``+``) goes through ``parse_qsl``, which gives the same pairs."""
    if "%" in text or "+" in text:
        items = parse_qsl(text, keep_blank_values=True)
        pairs, sent = dict(items), len(items)
    else:
        fields = [f.partition("=") for f in text.split("&") if f]
        pairs, sent = {k: v for k, _, v in fields}, len(fields)
    if len(pairs) != sent:
        raise ApiError(-1101, "Duplicate values for a parameter detected.")
    return pairs


class Params:
    """Typed access to one request's parameters, with Binance's errors."""

    __slots__ = ("data",)

    def __init__(self, data: dict[_Str, _Str]) -> None:
        self.data = data

    def check_known(self, allowed: frozenset[_Str] | None) -> None:
        """Reject names the endpoint does not read (-1104), as Binance does."""
        if allowed is None or self.data.keys() <= allowed:  # the usual case, one set comparison
            return
        unknown = [k for k in self.data if k not in allowed and k not in COMMON]
        if unknown:
            sent = len(self.data)
            raise not_all_read(sent - len(unknown), sent)

    def has(self, name: _Str) -> _Bool:
        return self.data.get(name, "") != ""

    def str(self, name: _Str, required: _Bool = False) -> _Str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise mandatory(name)
            return None
        return value

    def req(self, name: _Str) -> _Str:
        value = self.str(name, True)
        assert value is not None
        return value

    def decimal(self, name: _Str, required: _Bool = False) -> Decimal | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        if not _DECIMAL.match(raw):
            raise illegal(name, DECIMAL_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
            raise illegal(name, DECIMAL_RANGE) from None

    def int(self, name: _Str, required: _Bool = False, lo: _Int | None = None, hi: _Int | None = None) -> _Int | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        if not _INT.match(raw):
            raise illegal(name, INT_RANGE)
        value = int(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise invalid(name)
        return value

    def bool(self, name: _Str, default: _Bool = False) -> _Bool:
        raw = self.str(name)
        if raw is None:
            return default
        low = raw.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        raise invalid(name)

    def enum(self, name: _Str, cls: type[E], code: _Int, msg: _Str, required: _Bool = False) -> E | None:
        raw = self.str(name, required)
        if raw is None:
            return None
        member = cls._value2member_map_.get(raw)  # what cls(raw) finds first, without EnumType.__call__
        if member is not None:
            return member  # type: ignore[return-value]
        try:
            return cls(raw)
        except ValueError:
            raise ApiError(code, msg) from None

    def choice(self, name: _Str, options: Iterable[_Str], required: _Bool = False) -> _Str | None:
        raw = self.str(name, required)
        if raw is not None and raw not in options:
            raise invalid(name)
        return raw

    def client_id(self, name: _Str) -> _Str | None:
        raw = self.str(name)
        if raw is not None and not _CLIENT_ID.match(raw):
            raise illegal(name, CLIENT_ID_RANGE)
        return raw

    def limit(self, default: _Int, maximum: _Int) -> _Int:
        value = self.int("limit")
        if value is None:
            return default
        if value <= 0:
            raise invalid("limit")
        return min(value, maximum)
