"""The strategy plugin API: the small surface plugin authors write against.

A strategy declares its timeframe, typed parameters, indicators (once, vectorised, in ``init``) and
reacts to each closed kline in ``on_kline`` with ``buy`` / ``sell`` / ``close`` / ``reduce``.
Everything else has a no-op default. The engine creates one instance per traded symbol, or one for all
the symbols of its config entry when the class sets ``multi_symbol = True`` (pairs, spreads, rotation:
see :mod:`.group`).

    class EmaCross(Strategy):
        timeframe = "1h"
        fast = Param(20, "fast EMA period", min=2)
        slow = Param(50, "slow EMA period", min=3)

        def init(self):
            self.f = self.I(ema, self.close, self.fast)
            self.s = self.I(ema, self.close, self.slow)

        def on_kline(self, kline):
            if crossover(self.f, self.s):
                self.buy()
            elif crossunder(self.f, self.s):
                self.sell()
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np

from ..core.enums import IntentAction
from ..core.errors import ConfigError
from ..core.events import (
    KlineClosed,
    MarkPriceUpdated,
    OrderFilled,
    ProtectionIntent,
    TargetPositionIntent,
    TickerUpdated,
)
from .higher import HigherTimeframe, compute
from .rejection import OrderRejection
from .series import Cursor, Series, engine_array
from .symbol_data import MarketState, SymbolData, symbol_views

# the actions as module constants: ``IntentAction.OPEN_LONG`` goes through the enum class's lookup (about 0.3 us
# on Python 3.11), a global does not
_OPEN_LONG, _OPEN_SHORT = IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT
_CLOSE, _REDUCE = IntentAction.CLOSE, IntentAction.REDUCE

API_VERSION = 1
"""The plugin API version this engine implements. Strategies declare the one they target."""

_MISSING = object()


class Param:
    """A typed strategy parameter with a default; overridable from config and the command line."""

    def __init__(
        self,
        default: Any,
        doc: str = "",
        *,
        min: float | None = None,
        max: float | None = None,
        choices: tuple[Any, ...] | None = None,
    ) -> None:
        if type(default) not in (int, float, bool, str):
            raise TypeError(f"Param default must be int, float, bool or str, not {type(default).__name__}")
        self.default = default
        self.type: type = type(default)
        self.doc = doc
        self.min = min
        self.max = max
        self.choices = choices
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._params[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"parameter {self.name!r} is read-only; set it from config or --param")

    def coerce(self, value: Any, where: str) -> Any:
        """Convert and check a value from YAML (typed) or the command line (text)."""
        t = self.type
        if isinstance(value, str) and t is not str:
            text = value.strip()
            try:
                if t is bool:
                    lowered = text.lower()
                    if lowered not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(text)
                    value = lowered in ("true", "1", "yes")
                elif t is int:
                    value = int(text)
                else:
                    value = float(text)
            except ValueError:
                raise ConfigError(where, f"expected {t.__name__}, got {value!r}") from None
        elif t is float and type(value) is int:
            value = float(value)
        elif type(value) is not t:
            raise ConfigError(where, f"expected {t.__name__}, got {type(value).__name__} {value!r}")
        if self.min is not None and value < self.min:
            raise ConfigError(where, f"{value!r} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ConfigError(where, f"{value!r} is above the maximum {self.max}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(where, f"{value!r} is not one of {list(self.choices)}")
        return value


@dataclass(frozen=True, slots=True)
class Position:
    """What a strategy sees of its symbol's position: a snapshot, not a handle."""

    size: float = 0.0  # signed: > 0 long, < 0 short
    entry_price: float = 0.0

    @property
    def is_long(self) -> bool:
        return self.size > 0

    @property
    def is_short(self) -> bool:
        return self.size < 0

    def __bool__(self) -> bool:
        return self.size != 0


FLAT = Position()


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """How an indicator was declared, so it can be recomputed on other history (live, lookahead check)."""

    name: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    outputs: tuple[str, ...]
    timeframe: str | None = None  # computed on this higher timeframe (:mod:`.higher`); None: the strategy's


class Strategy:
    """Base class of every strategy plugin. Override ``init`` and ``on_kline``; the rest is optional."""

    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = ""
    timeframe: ClassVar[str] = "1h"
    add_to_position: ClassVar[bool] = False
    """What ``buy()`` while long and ``sell()`` while short do. False (the default, as in freqtrade):
    nothing; the call is ignored and counted (the backtest summary shows ``entries ignored``), so a
    signal that stays true kline after kline does not pile up a position. True: each such call is one
    more entry, sized and checked like the first (scaling in). Opposite calls always flip."""
    multi_symbol: ClassVar[bool] = False
    """True: one instance trades every symbol its config entry lists, sees each through ``self.data[symbol]``
    and names the symbol in its actions (``self.buy(symbol=...)``); ``on_kline`` runs once per kline open
    time, after every symbol's kline of that time closed (:mod:`.group`). False: one instance per symbol."""
    group_wait_s: ClassVar[float] = 10.0
    """Live, ``multi_symbol`` only: seconds to wait for the other symbols' klines of a time once the first
    arrived; after that the time is skipped (as a backtest skips a time where a symbol has no kline)."""
    warmup: int = 0
    # Market data beyond klines, kept current while the strategy defines ``on_mark_price`` (else never fed);
    # the first symbol's (each symbol's: ``self.data[symbol].funding_rate`` etc.):
    mark_price: float = float("nan")
    index_price: float = float("nan")
    funding_rate: float = float("nan")
    """The funding rate to be applied at ``next_funding_time`` (Binance's current, predicted rate)."""
    next_funding_time: int = 0
    """Klines needed before ``on_kline`` is called (also the live REST warm-up). If 0 it is inferred
    from the indicators: the first index where every declared indicator is defined."""

    # ------------------------------------------------------------------ engine-facing construction
    def __init__(
        self, symbol: str, params: Mapping[str, Any] | None = None, *, timeframe: str | None = None, where: str = "",
        symbols: Sequence[str] | None = None,
    ) -> None:
        self.symbol = symbol
        self.symbols: tuple[str, ...] = tuple(symbols) if symbols else (symbol,)
        """Every symbol this instance trades, ``symbol`` (the first) included."""
        self.data: dict[str, SymbolData] = {}
        """Each symbol's klines up to the current one: ``self.data["ETHUSDT"].close[-1]``."""
        self._markets = {sym: MarketState() for sym in self.symbols}  # per symbol; survives a re-bind
        self._positions: dict[str, Position] = {}  # multi_symbol: each symbol's position (the first's in .position)
        if timeframe is not None and timeframe != type(self).timeframe:
            self.timeframe = timeframe  # type: ignore[misc]  # per-instance override from config
        self._params = self.resolve_params(params or {}, where=where or f"strategies.{self.strategy_name()}.params")
        self._cursor = Cursor()
        self._specs: list[IndicatorSpec] = []
        self._indicators: list[Series] = []
        self._base: dict[str, Series] = {}
        self._open_time: np.ndarray | None = None
        self._higher_cache: dict[str, HigherTimeframe] = {}
        self._emit: Callable[..., None] = _unbound
        self._emit_intent: Callable[..., None] = _unbound  # set_stop, set_take_profit, target_position
        self.position: Position = FLAT
        """The position in ``symbol`` (a multi-symbol strategy reads the others' with ``position_of``)."""
        self.state: dict[str, Any] = {}
        """JSON-serialisable memory journaled by live runs when a handler changes it, restored on ``--resume``
        before ``on_start`` (initialise it with ``setdefault`` there, so a restored value is kept)."""

    @classmethod
    def strategy_name(cls) -> str:
        """Registry name: ``name`` if set, else the class name in snake_case."""
        return cls.name or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    @classmethod
    def parameters(cls) -> dict[str, Param]:
        found: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Param):
                    found[key] = value
        return found

    @classmethod
    def resolve_params(cls, given: Mapping[str, Any], where: str = "params") -> dict[str, Any]:
        """Defaults overridden by ``given``; unknown or mistyped names are errors naming the key."""
        declared = cls.parameters()
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}",
                f"unknown parameter of strategy {cls.strategy_name()!r}; it has: {', '.join(declared) or 'none'}",
            )
        return {
            name: p.coerce(given[name], f"{where}.{name}") if name in given else p.default
            for name, p in declared.items()
        }

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    # --------------------------------------------------------------------------- price history
    @property
    def open(self) -> Series:
        return self._base["open"]

    @property
    def high(self) -> Series:
        return self._base["high"]

    @property
    def low(self) -> Series:
        return self._base["low"]

    @property
    def close(self) -> Series:
        return self._base["close"]

    @property
    def volume(self) -> Series:
        return self._base["volume"]

    def I(  # noqa: E743
        self, func: Callable[..., Any], *args: Any, name: str | None = None, timeframe: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Declare an indicator: ``func`` runs once over the whole history (or the live window) on
        numpy arrays; the result is revealed to the strategy only up to the current kline.

        ``args`` may be series (``self.close``, another indicator) or plain values. A function that
        returns a tuple of arrays gives a tuple of series. ``timeframe="4h"`` computes it on 4h klines
        built from the strategy's own (inputs: price series or plain values); a 4h value shows from the
        kline that closes its 4h period on (:mod:`.higher`). A multi-symbol strategy's 4h inputs may be any of
        its symbols' price series: ``self.I(ema, self.data["B"].close, 20, timeframe="4h")`` is on B's 4h klines.
        """
        label = name or _label(func, args, kwargs)
        if timeframe is not None and timeframe != self.timeframe:
            label = f"{label}@{timeframe}" if name is None else label
        taken = {spec.name for spec in self._specs}
        base_label, n = label, 2
        while label in taken:
            label, n = f"{base_label}#{n}", n + 1
        if timeframe is not None and timeframe != self.timeframe:
            result: Any = compute(func, args, kwargs, self._higher(timeframe), self._price_field, label)
            if len(result) == 1:
                result = result[0]
        else:
            timeframe = None
            result = func(*[_raw(a) for a in args], **{k: _raw(v) for k, v in kwargs.items()})
        arrays = result if isinstance(result, tuple) else (result,)
        outputs = tuple(f"{label}[{k}]" for k in range(len(arrays))) if len(arrays) > 1 else (label,)
        self._specs.append(IndicatorSpec(label, func, args, kwargs, outputs, timeframe))
        made = []
        for out, arr in zip(outputs, arrays):
            values = np.asarray(arr, dtype=np.float64)
            if values.shape != (len(engine_array(self._base["close"])),):
                raise ValueError(f"indicator {out} returned shape {values.shape}, expected the history's length")
            series = Series(values, self._cursor, out)
            self._indicators.append(series)
            made.append(series)
        return tuple(made) if isinstance(result, tuple) else made[0]

    # ---------------------------------------------------------------------------------- actions
    def buy(
        self,
        quantity: float | Decimal | None = None,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        limit: float | None = None,
        tag: str = "",
        symbol: str | None = None,
    ) -> None:
        """Go long (closing a short first). Quantity None: the risk manager sizes it.

        While already long this is ignored unless the class sets ``add_to_position = True``. ``tag``
        names the entry in the trades and the report (``entry_tag``; ``exit_tag`` of a short it closes).
        ``symbol``: which of a multi-symbol strategy's symbols (None: ``self.symbol``); the same in every action.
        """
        self._emit(_OPEN_LONG, quantity, None, stop_loss, take_profit, limit, tag, symbol)

    def sell(
        self,
        quantity: float | Decimal | None = None,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        limit: float | None = None,
        tag: str = "",
        symbol: str | None = None,
    ) -> None:
        """Go short (closing a long first); while already short, ignored unless ``add_to_position``."""
        self._emit(_OPEN_SHORT, quantity, None, stop_loss, take_profit, limit, tag, symbol)

    def close_position(self, tag: str = "", *, symbol: str | None = None) -> None:
        """Close the whole position (reduce-only market order); ``tag`` becomes the trade's ``exit_tag``."""
        self._emit(_CLOSE, None, None, None, None, None, tag, symbol)

    def reduce(self, fraction: float = 0.5, tag: str = "", *, symbol: str | None = None) -> None:
        """Reduce the position by a fraction (reduce-only market order)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"reduce fraction must be in (0, 1], got {fraction}")
        self._emit(_REDUCE, None, fraction, None, None, None, tag, symbol)

    def set_stop(
        self,
        price: float | None = None,
        *,
        trail_pct: float | None = None,
        activation_price: float | None = None,
        tag: str = "",
        symbol: str | None = None,
    ) -> None:
        """Move the open position's stop to ``price``, or make it a trailing stop that follows the best price
        by ``trail_pct`` percent (0.1-10, Binance's callback rate), armed once ``activation_price`` trades
        (None: at once). The new stop is placed first and the old one cancelled only once the new one is
        accepted; a stop on the wrong side of the price, or with no position, is denied
        (``on_order_rejected``)."""
        if (price is None) == (trail_pct is None):
            raise ValueError("set_stop needs exactly one of price and trail_pct")
        self._emit_intent(ProtectionIntent, kind="stop", price=price, trail_pct=trail_pct,
                          activation_price=activation_price, tag=tag, symbol=symbol)

    def set_take_profit(self, price: float, *, tag: str = "", symbol: str | None = None) -> None:
        """Move the open position's take-profit to ``price`` (placed first, the old one then cancelled)."""
        self._emit_intent(ProtectionIntent, kind="take_profit", price=price, tag=tag, symbol=symbol)

    def target_position(
        self, quantity: float | Decimal | None = None, *, notional: float | None = None, tag: str = "",
        symbol: str | None = None,
    ) -> None:
        """Hold this signed position (base units, or ``notional`` USDT at the current close): the risk manager
        sends the difference, reduce-only where it reduces, closing first where it flips; 0 closes."""
        if (quantity is None) == (notional is None):
            raise ValueError("target_position needs exactly one of quantity and notional")
        qty = None if quantity is None else (quantity if isinstance(quantity, Decimal) else Decimal(repr(quantity)))
        self._emit_intent(TargetPositionIntent, quantity=qty, notional=notional, tag=tag, symbol=symbol)

    def position_of(self, symbol: str) -> Position:
        """The position in one of this strategy's symbols (``self.position`` is the first symbol's)."""
        if symbol == self.symbol:
            return self.position
        if symbol not in self.symbols:
            raise KeyError(f"{symbol} is not one of this strategy's symbols ({', '.join(self.symbols)})")
        return self._positions.get(symbol, FLAT)

    # ------------------------------------------------------------------------------------ hooks
    def init(self) -> None:
        """Declare indicators with ``self.I``. Runs again whenever the history is recomputed."""

    def on_start(self) -> None:
        """Called once before the first kline; keep state set up here, not in ``init``."""

    def on_kline(self, kline: KlineClosed) -> None:
        """Called for every closed kline of ``timeframe`` after the warm-up."""

    def on_fill(self, fill: OrderFilled) -> None:
        """Called when one of this strategy's orders fills (``self.position`` is already updated)."""

    def on_order_rejected(self, rejection: OrderRejection) -> None:
        """Called when an order of this strategy was denied by the risk manager or rejected by the
        exchange: ``rejection.source`` says which, ``code`` and ``reason`` why (see OrderRejection)."""

    def on_mark_price(self, update: MarkPriceUpdated) -> None:
        """Mark price, index and funding (live: every second; backtest: at each execution kline's close).
        Defining it subscribes the strategy; ``self.mark_price``, ``self.funding_rate`` and
        ``self.next_funding_time`` are already updated when it is called."""

    def on_ticker(self, ticker: TickerUpdated) -> None:
        """The symbol's rolling 24 h ticker (live: every 2 s; backtest: derived from the execution klines).
        Defining it subscribes the strategy."""

    def on_stop(self) -> None:
        """Called once at the end of a backtest or when a live run stops."""

    def act_mask(self) -> Any:
        """Optional: a bool array over the whole history, False on klines where ``on_kline`` cannot act, so a
        backtest may skip them (e.g. ``crossed(self.fast_ema, self.slow_ema)``); None: it may act anywhere.
        See :mod:`kinetic_empire.strategy.act_mask` for the contract and the helpers."""
        return None

    # -------------------------------------------------------------------------- engine plumbing
    def _fresh(self) -> Strategy:
        """A new, unbound instance of the same class, symbols, timeframe and parameters (lookahead checks,
        live warm-up probes)."""
        return type(self)(self.symbol, self.params, timeframe=self.timeframe, symbols=self.symbols)

    def _higher(self, timeframe: str) -> HigherTimeframe:
        made = self._higher_cache.get(timeframe)
        if made is None:
            if self._open_time is None:
                raise ValueError(f"timeframe={timeframe!r}: this history has no kline times")
            base = {k: engine_array(s) for k, s in self._price_keys().items()}
            made = self._higher_cache[timeframe] = HigherTimeframe(base, self._open_time, self.timeframe, timeframe)
        return made

    def _price_keys(self) -> dict[str, Series]:
        """Every price series by its key in a :class:`HigherTimeframe`: ``close`` (one symbol), else
        ``SYMBOL.close`` for each symbol's."""
        if not self.multi_symbol:
            return dict(self._base)
        return {f"{sym}.{f}": s for sym, d in self.data.items() for f, s in d.fields().items()}

    def _price_field(self, value: Any) -> str | None:
        for key, series in self._price_keys().items():
            if value is series:
                return key
        return None

    def _bind(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
        open_time: np.ndarray | None = None,
    ) -> None:
        """Attach a price history (and its kline open times) and (re)compute every indicator over it.

        A multi-symbol strategy gets 2-D arrays, one column per symbol in ``symbols`` order (rows are the
        open times where every symbol has a kline), so truncating a history is still ``a[: k + 1]``."""
        self._open_time = open_time
        self._higher_cache = {}
        self.data = symbol_views(self.symbols, (open_, high, low, close, volume), self._cursor, self._markets)
        self._base = self.data[self.symbol].fields()
        self._specs = []
        self._indicators = []
        self.init()

    def _inferred_warmup(self) -> int:
        if self.warmup:
            return int(self.warmup)
        first = 0
        for series in self._indicators:
            finite = np.flatnonzero(np.isfinite(engine_array(series)))
            first = max(first, int(finite[0]) if finite.size else len(engine_array(series)))
        return first + 1 if self._indicators else 1


def _label(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """``ema(close, 20)``: readable in reports and unique for most declarations."""
    parts = [a.name if isinstance(a, Series) else repr(a) for a in args]
    parts += [f"{k}={v.name if isinstance(v, Series) else repr(v)}" for k, v in kwargs.items()]
    return f"{getattr(func, '__name__', 'indicator')}({', '.join(parts)})"


def _raw(value: Any) -> Any:
    return engine_array(value) if isinstance(value, Series) else value


def _unbound(*_: Any) -> None:
    raise RuntimeError("strategy actions are only available while the engine runs it")

