"""What one download task fetches: klines, mark-price klines or funding rates of one symbol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The three series; values are data.binance.vision's folder names."""

    KLINES = "klines"
    MARK = "markPriceKlines"
    FUNDING = "fundingRate"


REST_PATHS: dict[Kind, str] = {
    Kind.KLINES: "/fapi/v1/klines",
    Kind.MARK: "/fapi/v1/markPriceKlines",
    Kind.FUNDING: "/fapi/v1/fundingRate",
}


@dataclass(frozen=True, slots=True)
class SeriesKey:
    kind: Kind
    symbol: str
    timeframe: str | None = None

    def __str__(self) -> str:
        if self.kind is Kind.FUNDING:
            return f"{self.symbol} funding"
        suffix = " mark" if self.kind is Kind.MARK else ""
        return f"{self.symbol} {self.timeframe}{suffix}"

    @property
    def slug(self) -> str:
        """File-name form, e.g. ``klines-1m``, ``mark-1h``, ``funding``."""
        if self.kind is Kind.FUNDING:
            return "funding"
        return f"{'mark' if self.kind is Kind.MARK else 'klines'}-{self.timeframe}"
