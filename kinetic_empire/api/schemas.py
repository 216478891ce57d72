"""Request bodies of the write endpoints: strict (unknown keys refused), so a typo is an error, not a no-op."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..risk.operator import ACTIONS

Command = Literal["pause", "resume", "halt", "flatten", "cancel_all"]
assert set(ACTIONS) == {"pause", "resume", "halt", "flatten", "cancel_all"}  # the API names what the desk knows

_SYMBOL = r"^[A-Z0-9]{1,30}$"
_ID = r"^[A-Za-z0-9_.:-]{1,30}$"  # leaves room for the "-e" suffix in Binance's 36 characters
_CLIENT_ID = r"^[.A-Z:/a-z0-9_-]{1,36}$"
_MAX = Decimal("1e9")  # no symbol trades a quantity or a price anywhere near this


class ApiError(Exception):
    """An answer other than 2xx: ``{"error": message, "field": field}`` with ``status``."""

    def __init__(self, status: int, message: str, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = status, message, field, extra

    def body(self) -> dict[str, object]:
        return {"error": self.message, "field": self.field, **self.extra}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrderBody(_Strict):
    """A manual order: decided by the risk manager like a strategy's intent (strategy id ``manual``)."""

    symbol: str = Field(pattern=_SYMBOL, description="a symbol this run trades, e.g. FILUSDT")
    side: Literal["BUY", "SELL"]
    quantity: Decimal = Field(gt=0, le=_MAX, allow_inf_nan=False,
                              description="base-asset quantity (rounded to the lot step)")
    price: Decimal | None = Field(None, gt=0, le=_MAX, allow_inf_nan=False, description="limit price; absent: market")
    stop_price: Decimal | None = Field(None, gt=0, le=_MAX, allow_inf_nan=False,
                                       description="protective stop once filled")
    take_profit_price: Decimal | None = Field(None, gt=0, le=_MAX, allow_inf_nan=False)
    reduce_only: bool = Field(False, description="only reduce the position (side must oppose it)")
    client_order_id: str | None = Field(None, pattern=_ID,
                                        description="the intent id; the entry order's client id is <id>-e")


class CancelBody(_Strict):
    client_order_id: str = Field(pattern=_CLIENT_ID)


class ControlBody(_Strict):
    command: Command
    symbol: str | None = Field(None, pattern=_SYMBOL, description="one symbol; absent: the whole account")
    cause: str = Field("", max_length=200, description="why, for the journal")
