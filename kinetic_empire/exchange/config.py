"""Settings of the simulated exchange."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Fees are Binance's regular-tier USD-M rates; funding is a constant unless a series is given.

    ``funding_rates`` maps a symbol to ``{funding_time_ms: rate}`` (replayed from
    ``/fapi/v1/fundingRate``); settlement times missing from the series use ``funding_rate``.
    ``slippage_bps`` moves every taker fill against the taker by that many basis points, rounded to
    the tick against the taker.
    """

    initial_balance: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    slippage_bps: Decimal = Decimal("0")
    funding_rate: Decimal = Decimal("0.0001")
    funding_interval_ms: int = 8 * 3_600_000
    funding_rates: Mapping[str, Mapping[int, Decimal]] = field(default_factory=dict)
    default_leverage: int = 20
    max_fill_qty: Mapping[str, Decimal] = field(default_factory=dict)  # partial fills, per tick
    fill_market_immediately: bool = False  # False: market orders fill at the next price update
