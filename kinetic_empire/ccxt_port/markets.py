"""Market metadata from ccxt: a venue's symbols as :class:`SymbolRules`, and the name maps between them.

The engine names symbols the Binance way (``FILUSDT``); ccxt names them in its unified form
(``FIL/USDT:USDT``). For Binance-family venues ccxt keeps the raw exchangeInfo entry in ``market["info"]``,
so the rules are parsed from it exactly as the native adapter parses them. For any other venue they are
built from ccxt's unified ``precision`` and ``limits`` (tick and step sizes, min/max quantity and
notional); the filters ccxt does not describe (percent-price multipliers, order count caps) are absent,
so the risk manager checks only what the venue told.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..core.rules import SymbolRules

_BIG = Decimal("1e12")


def engine_symbol(market: Mapping[str, Any]) -> str:
    """``FILUSDT`` for ccxt's ``FIL/USDT:USDT`` (its ``id`` on Binance; base+quote elsewhere)."""
    info = market.get("info") or {}
    if isinstance(info, Mapping) and info.get("symbol"):
        return str(info["symbol"])
    return f"{market['base']}{market['quote']}"


def linear_swaps(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The venue's USD-margined perpetuals (ccxt: swap, linear), keyed by engine symbol."""
    return {engine_symbol(m): m for m in markets.values() if m.get("swap") and m.get("linear")}


def symbol_rules(market: Mapping[str, Any]) -> SymbolRules:
    """The rules of one ccxt market: exact from Binance's exchangeInfo entry, else from unified fields."""
    info = market.get("info") or {}
    if isinstance(info, Mapping) and "filters" in info:
        return SymbolRules.from_exchange_info(info)
    return SymbolRules.from_exchange_info(_synthetic_entry(market))


def _num(value: Any, default: Decimal) -> Decimal:
    return default if value is None else Decimal(str(value))


def _synthetic_entry(market: Mapping[str, Any]) -> dict[str, Any]:
    """An exchangeInfo-shaped entry from ccxt's unified precision and limits (TICK_SIZE precision mode)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    price = limits.get("price") or {}
    cost = limits.get("cost") or {}
    tick = _num(precision.get("price"), Decimal("0.0001"))
    step = _num(precision.get("amount"), Decimal("0.001"))
    min_qty = _num(amount.get("min"), step)
    max_qty = _num(amount.get("max"), _BIG)
    active = market.get("active") is not False
    return {
        "symbol": engine_symbol(market),
        "status": "TRADING" if active else "BREAK",
        "baseAsset": market.get("base", ""),
        "quoteAsset": market.get("quote", ""),
        "marginAsset": market.get("settle") or market.get("quote", ""),
        "contractType": "PERPETUAL",
        "pricePrecision": max(0, -tick.normalize().as_tuple().exponent),  # type: ignore[operator]
        "quantityPrecision": max(0, -step.normalize().as_tuple().exponent),  # type: ignore[operator]
        "orderTypes": ["LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "liquidationFee": "0.0125",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": str(tick), "minPrice": str(_num(price.get("min"), tick)),
             "maxPrice": str(_num(price.get("max"), _BIG))},
            {"filterType": "LOT_SIZE", "stepSize": str(step), "minQty": str(min_qty), "maxQty": str(max_qty)},
            {"filterType": "MARKET_LOT_SIZE", "stepSize": str(step), "minQty": str(min_qty),
             "maxQty": str(max_qty)},
            {"filterType": "MIN_NOTIONAL", "notional": str(_num(cost.get("min"), Decimal(0)))},
        ],
    }
