"""Binance's error replies: ``{"code": <negative int>, "msg": <text>}`` with the matching HTTP status.

Handlers raise :class:`ApiError`; the server turns it into the reply. Message texts are Binance's own
(reference section 6), so clients that match on them keep working.
"""

from __future__ import annotations

import json

from ..core.errors import ExchangeError

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INT_RANGE = r"^[0-9]{1,20}$"
CLIENT_ID_RANGE = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"

# HTTP status per code where it is not 400 (reference 6.1 and 6.2).
_STATUS = {-2014: 401, -2015: 401, -1003: 429, -1000: 500, -1001: 503, -1006: 503, -1007: 408, -1015: 429}


class ApiError(Exception):
    """A request refused the way Binance refuses it."""

    def __init__(
        self, code: int, msg: str, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status if status is not None else _STATUS.get(code, 400)
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.code, self.msg)

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def error_body(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


def from_exchange(exc: ExchangeError) -> ApiError:
    return ApiError(exc.code, exc.msg, exc.http_status if exc.http_status != 400 else None)


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def invalid(name: str) -> ApiError:
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def not_all_read(read: int, sent: int) -> ApiError:
    return ApiError(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.")


def bad_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def unknown_order() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")


def no_such_order() -> ApiError:
    return ApiError(-2013, "Order does not exist.")


def path_invalid(method: str, path: str, status: int = 404) -> ApiError:
    return ApiError(-5000, f"Path {path}, Method {method} is invalid", status)
