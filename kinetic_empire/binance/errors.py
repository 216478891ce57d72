"""Binance error replies mapped to our own exception types, from the response's ``code`` field.

The mapping is ours (reference section 6), not a client library's: ccxt 4.5.90 picks its futures
error table by host, so against the sandbox or a custom URL it would report -2019 or -4164 as a
generic error. What matters to the engine is what it may do next, so the types say that:

* :class:`RejectedError`: the venue refused the request; it did nothing. Never retried.
* :class:`AuthError`: keys or signature wrong; stop and tell the operator.
* :class:`TimestampError`: clock out of the recvWindow; resync and retry once.
* :class:`RateLimitError`: 429/418; wait ``retry_after`` seconds. The request was not processed.
* :class:`UnavailableError`: a definite failure (-1001, -1008, "Service Unavailable"); safe to resend.
* :class:`UnknownStatusError`: 5xx/408/timeout: the request may have been executed; reconcile first.
* :class:`VenueResponseError`: the venue answered something that is not Binance's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.errors import ExchangeError
from ..logs import redact


class BinanceError(ExchangeError):
    """A failed request, with Binance's code and message and where it went (never its parameters)."""

    retryable = False

    def __init__(self, code: int, message: str, http_status: int = 400, endpoint: str = "") -> None:
        message = redact(message)
        super().__init__(code, message, http_status)
        self.endpoint = endpoint

    def __str__(self) -> str:
        where = f" ({self.endpoint}, HTTP {self.http_status})" if self.endpoint else ""
        return f"Binance error {self.code}: {self.msg}{where}"


class RejectedError(BinanceError):
    """Business or parameter rejection: nothing happened on the venue."""


class UnknownOrderError(RejectedError):
    """-2011 / -2013: the order is unknown or already final."""


class DuplicateOrderError(RejectedError):
    """-4116: an open order with this client id exists, so the earlier attempt was placed."""


class NoChangeError(RejectedError):
    """-4046 / -4059: the setting already has the requested value (treated as success)."""


class ListenKeyError(RejectedError):
    """-1125: the listenKey does not exist (expired); create a new one."""


class AuthError(BinanceError):
    """-2014 / -2015 / -1022 / HTTP 401: key, secret, IP or permissions."""


class TimestampError(BinanceError):
    """-1021 / -5028: outside the recvWindow; the request was not processed."""

    retryable = True


class RateLimitError(BinanceError):
    """-1003 / -1015, HTTP 429 or 418 (banned); the request was not processed."""

    retryable = True

    def __init__(self, code: int, message: str, http_status: int, endpoint: str = "", retry_after: float = 1.0):
        super().__init__(code, message, http_status, endpoint)
        self.retry_after = retry_after


class UnavailableError(BinanceError):
    """A definite failure the venue asks us to retry; the request was not executed."""

    retryable = True


class UnknownStatusError(BinanceError):
    """Sent, no usable answer: it may have been executed. Orders are reconciled before any resend."""

    retryable = True


class VenueResponseError(BinanceError):
    """Not Binance's JSON (HTML from a proxy, truncated body, wrong shape)."""

    retryable = True


UNKNOWN_STATUS_CODES = frozenset({-1000, -1006, -1007})
UNAVAILABLE_CODES = frozenset({-1001, -1008})
AUTH_CODES = frozenset({-2014, -2015, -1022, -2008})
_REJECTED_BY_CODE: dict[int, type[RejectedError]] = {
    -2011: UnknownOrderError,
    -2013: UnknownOrderError,
    -4116: DuplicateOrderError,
    -4046: NoChangeError,
    -4059: NoChangeError,
    -1125: ListenKeyError,
}
_SERVICE_UNAVAILABLE = "Service Unavailable."


def _retry_after(headers: Mapping[str, str]) -> float:
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


def error_from_reply(status: int, body: bytes, headers: Mapping[str, str], endpoint: str) -> BinanceError:
    """The exception for a non-2xx reply (or a 2xx reply that carries an error object)."""
    code, msg = _code_and_message(body)
    if code is None:
        snippet = body[:120].decode("utf-8", "replace").replace("\n", " ")
        if status >= 500 or status == 408:
            return UnknownStatusError(-1000, f"HTTP {status} without Binance's error body: {snippet!r}", status,
                                      endpoint)
        if status in (429, 418):
            return RateLimitError(-1003, f"HTTP {status}: rate limited", status, endpoint, _retry_after(headers))
        if status == 401:
            return AuthError(-2015, f"HTTP 401: {snippet!r}", status, endpoint)
        return VenueResponseError(0, f"HTTP {status}, not Binance's JSON error body: {snippet!r}", status, endpoint)
    return error_for_code(code, msg, status, endpoint, _retry_after(headers))


def error_for_code(
    code: int, msg: str, status: int = 400, endpoint: str = "", retry_after: float = 1.0
) -> BinanceError:
    if code in (-1003, -1015) or status in (429, 418):
        return RateLimitError(code, msg, status, endpoint, retry_after)
    if code in AUTH_CODES or status == 401:
        return AuthError(code, msg, status, endpoint)
    if code in (-1021, -5028):
        return TimestampError(code, msg, status, endpoint)
    if code in UNAVAILABLE_CODES or (status == 503 and msg.strip() == _SERVICE_UNAVAILABLE):
        return UnavailableError(code, msg, status, endpoint)
    if code in UNKNOWN_STATUS_CODES or status >= 500 or status == 408:
        return UnknownStatusError(code, msg, status, endpoint)
    return _REJECTED_BY_CODE.get(code, RejectedError)(code, msg, status, endpoint)


def _code_and_message(body: bytes) -> tuple[int | None, str]:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, ""
    if not isinstance(data, dict) or "code" not in data:
        return None, ""
    try:
        code = int(data["code"])
    except (TypeError, ValueError):
        return None, ""
    return code, str(data.get("msg", ""))


def is_error_object(data: Any) -> bool:
    """A 200 reply that is an error object (batch items, some mode-change endpoints answer code 200)."""
    return isinstance(data, dict) and isinstance(data.get("code"), int) and data["code"] < 0 and "msg" in data
