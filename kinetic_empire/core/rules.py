"""Symbol trading rules from ``exchangeInfo`` and maintenance-margin brackets from ``leverageBracket``.

:class:`SymbolRules` is the one place that quantises prices and quantities and checks orders
against Binance's filters. The simulated exchange (and so the local sandbox) and the risk manager
both call it, so an order the risk manager lets through is one the exchange accepts.

Rounding rules (all in ``Decimal``, built from the filter strings):

* quantities always round **down** to the step: never above the risk budget;
* prices round to the tick in the direction that keeps the order on the safe side: a BUY limit
  rounds down and a SELL limit rounds up (never pay more / sell for less than asked); a stop-loss
  trigger rounds toward the position's entry (it fires no later than asked: a long's stop (a SELL)
  rounds up, a short's stop (a BUY) rounds down); a take-profit trigger rounds away from the entry
  (SELL rounds up, BUY rounds down), so it never fires below the asked profit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from .enums import OrderType, Side

log = logging.getLogger(__name__)

ZERO = Decimal(0)

KNOWN_FILTERS = frozenset(
    {
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "MAX_NUM_ORDERS",
        "MAX_NUM_ALGO_ORDERS",
        "MIN_NOTIONAL",
        "PERCENT_PRICE",
    }
)


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """Why an order breaks a symbol rule: Binance's error code and message, plus our short code."""

    code: str
    binance_code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _align(value: Decimal, step: Decimal, base: Decimal, rounding: str) -> Decimal:
    if step == 0:
        return value
    n = ((value - base) / step).to_integral_value(rounding=rounding)
    return (base + n * step).quantize(step)


def _more_places(value: Decimal, grid: Decimal) -> bool:
    """``value`` is written with more decimal places than ``grid`` (its exponent is smaller): Binance's -1111.

    Callers first ask ``same_quantum`` (one C comparison), true for every value already rounded to the
    grid, so the tuple ``as_tuple`` builds is made only for values that did not come from the rounding.
    """
    return value.as_tuple().exponent < grid.as_tuple().exponent  # type: ignore[operator]


def _dec(raw: Any, where: str) -> Decimal:
    try:
        return Decimal(str(raw))
    except Exception as exc:
        raise ValueError(f"{where}: not a number: {raw!r}") from exc


def _fmt(value: Decimal) -> str:
    """Binance prints filter values without padding ('5', '0.1')."""
    text = format(value.normalize(), "f")
    return text


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The filters of one USD-M symbol, parsed once from exchangeInfo."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    contract_type: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    multiplier_up: Decimal | None
    multiplier_down: Decimal | None
    max_num_orders: int | None
    max_num_algo_orders: int | None
    liquidation_fee: Decimal
    price_precision: int
    quantity_precision: int
    order_types: tuple[str, ...]
    time_in_force: tuple[str, ...]

    # ----------------------------------------------------------------------------------- parsing
    @classmethod
    def from_exchange_info(cls, entry: Mapping[str, Any]) -> SymbolRules:
        symbol = str(entry.get("symbol", "?"))
        filters: dict[str, Mapping[str, Any]] = {}
        for f in entry.get("filters", []):
            kind = f.get("filterType")
            if kind in KNOWN_FILTERS:
                filters[kind] = f
            else:
                log.debug("ignoring unknown filter %s on %s", kind, symbol)
        where = f"exchangeInfo symbol {symbol}"
        try:
            price = filters["PRICE_FILTER"]
            lot = filters["LOT_SIZE"]
        except KeyError as missing:
            raise ValueError(f"{where}: missing filter {missing.args[0]}") from None
        market = filters.get("MARKET_LOT_SIZE", lot)
        pct = filters.get("PERCENT_PRICE")
        notional = filters.get("MIN_NOTIONAL", {})
        max_orders = filters.get("MAX_NUM_ORDERS")
        max_algo = filters.get("MAX_NUM_ALGO_ORDERS")
        market_step = _dec(market.get("stepSize", lot["stepSize"]), where)
        return cls(
            symbol=symbol,
            status=str(entry.get("status", "TRADING")),
            base_asset=str(entry.get("baseAsset", "")),
            quote_asset=str(entry.get("quoteAsset", "USDT")),
            margin_asset=str(entry.get("marginAsset", entry.get("quoteAsset", "USDT"))),
            contract_type=str(entry.get("contractType", "PERPETUAL")),
            tick_size=_dec(price["tickSize"], where),
            min_price=_dec(price["minPrice"], where),
            max_price=_dec(price["maxPrice"], where),
            step_size=_dec(lot["stepSize"], where),
            min_qty=_dec(lot["minQty"], where),
            max_qty=_dec(lot["maxQty"], where),
            market_step_size=market_step if market_step > 0 else _dec(lot["stepSize"], where),
            market_min_qty=_dec(market.get("minQty", lot["minQty"]), where),
            market_max_qty=_dec(market.get("maxQty", lot["maxQty"]), where),
            min_notional=_dec(notional.get("notional", notional.get("minNotional", "0")), where),
            multiplier_up=_dec(pct["multiplierUp"], where) if pct else None,
            multiplier_down=_dec(pct["multiplierDown"], where) if pct else None,
            max_num_orders=int(max_orders["limit"]) if max_orders else None,
            max_num_algo_orders=int(max_algo["limit"]) if max_algo else None,
            liquidation_fee=_dec(entry.get("liquidationFee", "0.0125"), where),
            price_precision=int(entry.get("pricePrecision", 8)),
            quantity_precision=int(entry.get("quantityPrecision", 8)),
            order_types=tuple(entry.get("orderTypes", [t.value for t in OrderType])),
            time_in_force=tuple(entry.get("timeInForce", ["GTC", "IOC", "FOK", "GTX", "GTD"])),
        )

    @property
    def is_trading(self) -> bool:
        return self.status == "TRADING"

    # ---------------------------------------------------------------------------------- rounding
    def round_qty(self, qty: Decimal, market: bool = False) -> Decimal:
        """Round a quantity down to the (market) lot step; never up."""
        step = self.market_step_size if market else self.step_size
        base = self.market_min_qty if market else self.min_qty
        if qty < base:
            return _align(qty, step, ZERO, ROUND_FLOOR)
        return _align(qty, step, base, ROUND_FLOOR)

    def round_price(self, price: Decimal, side: Side, *, passive: bool = True) -> Decimal:
        """Round to the tick. ``passive``: BUY down, SELL up (a limit never pays more than asked).

        With ``passive=False`` the direction is reversed (BUY up, SELL down), which is what a
        stop-loss trigger wants: it fires no later than asked.
        """
        down = (side is Side.BUY) == passive
        return _align(price, self.tick_size, self.min_price, ROUND_FLOOR if down else ROUND_CEILING)

    def round_price_nearest(self, price: Decimal) -> Decimal:
        """Nearest tick; used for fill prices derived from float market data."""
        if self.tick_size == 0:
            return price
        n = ((price - self.min_price) / self.tick_size).to_integral_value()
        return (self.min_price + n * self.tick_size).quantize(self.tick_size)

    def round_qty_up(self, qty: Decimal, market: bool = False) -> Decimal:
        step = self.market_step_size if market else self.step_size
        return _align(qty, step, ZERO, ROUND_CEILING)

    # -------------------------------------------------------------------------------- validation
    def check_price(self, price: Decimal, what: str = "price") -> RuleViolation | None:
        if price <= 0:
            return RuleViolation("PRICE_NOT_POSITIVE", -4001, "Price less than 0.")
        if not price.same_quantum(self.tick_size) and _more_places(price, self.tick_size):
            return RuleViolation("PRICE_PRECISION", -1111, "Precision is over the maximum defined for this asset.")
        if self.min_price > 0 and price < self.min_price:
            return RuleViolation("PRICE_BELOW_MIN", -4013, "Price less than min price.")
        if self.max_price > 0 and price > self.max_price:
            return RuleViolation("PRICE_ABOVE_MAX", -4002, "Price greater than max price.")
        if self.tick_size > 0 and (price - self.min_price) % self.tick_size != 0:
            return RuleViolation("PRICE_OFF_TICK", -4014, "Price not increased by tick size.")
        return None

    def check_qty(self, qty: Decimal, market: bool) -> RuleViolation | None:
        step = self.market_step_size if market else self.step_size
        lo = self.market_min_qty if market else self.min_qty
        hi = self.market_max_qty if market else self.max_qty
        if qty <= 0:
            return RuleViolation("QTY_NOT_POSITIVE", -4003, "Quantity less than or equal to zero.")
        if not qty.same_quantum(step) and _more_places(qty, step):
            return RuleViolation("QTY_PRECISION", -1111, "Precision is over the maximum defined for this asset.")
        if qty < lo:
            return RuleViolation("QTY_BELOW_MIN", -4004, "Quantity less than min quantity.")
        if qty > hi:
            return RuleViolation("QTY_ABOVE_MAX", -4005, "Quantity greater than max quantity.")
        if step > 0 and (qty - lo) % step != 0:
            return RuleViolation("QTY_OFF_STEP", -4023, "Qty not increased by step size.")
        return None

    def check_percent_price(self, side: Side, price: Decimal, mark: Decimal) -> RuleViolation | None:
        if self.multiplier_up is None or self.multiplier_down is None or mark <= 0:
            return None
        if side is Side.BUY and price > mark * self.multiplier_up:
            return RuleViolation("PRICE_ABOVE_MARK_CAP", -4016, "Price is higher than mark price multiplier cap.")
        if side is Side.SELL and price < mark * self.multiplier_down:
            return RuleViolation("PRICE_BELOW_MARK_FLOOR", -4024, "Price is lower than mark price multiplier floor.")
        return None

    def check_notional(self, qty: Decimal, price: Decimal, reduce_only: bool) -> RuleViolation | None:
        if reduce_only or self.min_notional <= 0:
            return None
        if qty * price < self.min_notional:
            return RuleViolation(
                "NOTIONAL_BELOW_MIN",
                -4164,
                f"Order's notional must be no smaller than {_fmt(self.min_notional)} (unless you choose reduce only).",
            )
        return None

    def check_market_order(self, quantity: Decimal, mark_price: Decimal, reduce_only: bool) -> RuleViolation | None:
        """:meth:`check_order` for a MARKET order (no price, no trigger, a quantity): the same checks in the
        same order, without the ones that cannot apply (the risk gate's per-order path)."""
        if self.status != "TRADING":
            return RuleViolation("SYMBOL_NOT_TRADING", -4140, "Invalid symbol status for opening position.")
        bad = self.check_qty(quantity, True)
        if bad:
            return bad
        return self.check_notional(quantity, mark_price, reduce_only)

    def check_order(
        self,
        *,
        side: Side,
        order_type: OrderType,
        quantity: Decimal | None,
        price: Decimal | None,
        trigger_price: Decimal | None,
        mark_price: Decimal,
        reduce_only: bool = False,
        close_position: bool = False,
    ) -> RuleViolation | None:
        """Every filter, in the order Binance reports them (reference section 5.1)."""
        if not self.is_trading:
            return RuleViolation("SYMBOL_NOT_TRADING", -4140, "Invalid symbol status for opening position.")
        for p, what in ((price, "price"), (trigger_price, "stopPrice")):
            if p is not None:
                bad = self.check_price(p, what)
                if bad:
                    return bad
        market = order_type in (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
        if quantity is not None and not close_position:
            bad = self.check_qty(quantity, market)
            if bad:
                return bad
        if price is not None and order_type in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT):
            bad = self.check_percent_price(side, price, mark_price)
            if bad:
                return bad
        if quantity is not None and not close_position:
            ref = price if price is not None else (trigger_price if trigger_price is not None else mark_price)
            bad = self.check_notional(quantity, ref, reduce_only)
            if bad:
                return bad
        return None


# ------------------------------------------------------------------------------------------ brackets


@dataclass(frozen=True, slots=True)
class Bracket:
    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True, slots=True)
class LeverageBrackets:
    """A symbol's notional tiers: max leverage and maintenance margin by position notional."""

    symbol: str
    brackets: tuple[Bracket, ...]

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> LeverageBrackets:
        symbol = str(entry["symbol"])
        rows = sorted(entry["brackets"], key=lambda b: float(b["notionalFloor"]))
        if not rows:
            raise ValueError(f"leverageBracket {symbol}: no brackets")
        return cls(
            symbol,
            tuple(
                Bracket(
                    bracket=int(b["bracket"]),
                    initial_leverage=int(b["initialLeverage"]),
                    notional_floor=_dec(b["notionalFloor"], symbol),
                    notional_cap=_dec(b["notionalCap"], symbol),
                    maint_margin_ratio=_dec(b["maintMarginRatio"], symbol),
                    cum=_dec(b["cum"], symbol),
                )
                for b in rows
            ),
        )

    def bracket_for(self, notional: Decimal) -> Bracket:
        for b in self.brackets:
            if notional < b.notional_cap:
                return b
        return self.brackets[-1]

    def maintenance_margin(self, notional: Decimal) -> Decimal:
        b = self.bracket_for(notional)
        return notional * b.maint_margin_ratio - b.cum

    def max_leverage(self, notional: Decimal = ZERO) -> int:
        return self.bracket_for(notional).initial_leverage

    def max_notional(self, leverage: int) -> Decimal:
        """notionalCap of the highest bracket that still allows ``leverage``."""
        best = ZERO
        for b in self.brackets:
            if b.initial_leverage >= leverage:
                best = b.notional_cap
        return best


def parse_exchange_info(payload: Mapping[str, Any]) -> dict[str, SymbolRules]:
    """All symbols of an exchangeInfo response, keyed by symbol."""
    if "symbols" not in payload:
        raise ValueError("exchangeInfo has no 'symbols' list")
    return {str(s["symbol"]): SymbolRules.from_exchange_info(s) for s in payload["symbols"]}


def parse_brackets(payload: Iterable[Mapping[str, Any]]) -> dict[str, LeverageBrackets]:
    return {str(e["symbol"]): LeverageBrackets.from_api(e) for e in payload}
