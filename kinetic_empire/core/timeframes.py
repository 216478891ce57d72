"""Binance kline intervals and their lengths."""

from __future__ import annotations

_MINUTE = 60_000

TIMEFRAME_MS: dict[str, int] = {
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": 60 * _MINUTE,
    "2h": 120 * _MINUTE,
    "4h": 240 * _MINUTE,
    "6h": 360 * _MINUTE,
    "8h": 480 * _MINUTE,
    "12h": 720 * _MINUTE,
    "1d": 1440 * _MINUTE,
    "3d": 3 * 1440 * _MINUTE,
    "1w": 7 * 1440 * _MINUTE,
}
"""Every fixed-length interval Binance offers (``1M`` has no fixed length and is not supported)."""


def timeframe_ms(timeframe: str) -> int:
    """Length of a timeframe in ms; a clear error for anything Binance does not offer."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; Binance offers {', '.join(TIMEFRAME_MS)}") from None


WEEK_ORIGIN_MS = 4 * 1440 * _MINUTE
"""Binance weekly klines open on Monday 00:00 UTC; the epoch (1970-01-01) was a Thursday."""


def period_origin_ms(timeframe: str) -> int:
    """Epoch offset that open_times of `timeframe` are aligned to: 0 for all but ``1w`` (Mondays)."""
    return WEEK_ORIGIN_MS if timeframe == "1w" else 0
