"""Mark price, funding and ticker in a backtest: replayed from the store when it has them, asked for only.

Two independent parts, both off the default path:

- **The exchange on the mark.** When a store holds mark-price klines for a symbol (``kinetic download``
  fetches them), the simulated exchange takes each execution kline together with its mark kline
  (:func:`kinetic_empire.exchange.marked.on_marked_kline`): unrealised PnL, margin, funding and
  liquidation use the mark, as on Binance; the equity curve is marked at the mark's close. Without them,
  the mark is the last price, and the report says so.
- **Events for strategies.** Only when a strategy defines ``on_mark_price`` / ``on_ticker``: after each
  execution kline of its symbol (after the strategies saw that kline) a :class:`MarkPriceUpdated` (the
  mark's close, or the close where there is no mark) and a :class:`TickerUpdated` (the rolling 24 h
  window of execution klines ending there) are published. A strategy that defines neither costs nothing.

The funding rate in a backtest's :class:`MarkPriceUpdated` is the last *settled* rate: Binance streams
the running estimate of the next one, which no history keeps, and the next settled rate would be the
future.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.bus import EventBus
from ..core.errors import DataError
from ..core.events import KlineClosed, MarkPriceUpdated, TickerUpdated
from ..core.timeframes import timeframe_ms
from ..data import KlineFrame, resample
from ..download.stores import MarkKlineStore
from ..exchange import SimulatedExchange
from ..exchange.marked import on_marked_kline
from ..strategy.market_hooks import MarketDataWanted, attach_market_hooks

DAY_MS = 86_400_000
NAN = float("nan")


def load_mark_frames(stores: Iterable[Path], execution: Mapping[str, str], end: int | None) -> dict[str, KlineFrame]:
    """Each symbol's mark-price klines at its execution timeframe (resampled from 1m if need be), where a
    store has them."""
    out: dict[str, KlineFrame] = {}
    for root in stores:
        store = MarkKlineStore(root)
        for sym, tf in execution.items():
            if sym in out:
                continue
            for have in dict.fromkeys((tf, "1m")):
                if timeframe_ms(have) > timeframe_ms(tf) or not store.series_dir(sym, have).is_dir():
                    continue
                try:
                    frame = store.read(sym, have, end_ms=end)
                except DataError:
                    continue
                out[sym] = frame if have == tf else resample(frame, tf)
                break
    return out


@dataclass(frozen=True, slots=True)
class AlignedMarks:
    """Mark open/high/low/close per execution row (NaN where the mark series has no kline)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    covered: int

    @classmethod
    def of(cls, mark: KlineFrame, execution: KlineFrame) -> AlignedMarks:
        idx = np.searchsorted(mark.open_time, execution.open_time)
        clipped = np.clip(idx, 0, max(0, len(mark) - 1))
        ok = (idx < len(mark)) & (mark.open_time[clipped] == execution.open_time) if len(mark) else idx < 0
        o, h, lo, c = (np.where(ok, getattr(mark, c)[clipped] if len(mark) else NAN, NAN)
                       for c in ("open", "high", "low", "close"))
        return cls(o, h, lo, c, covered=int(ok.sum()))


def settled_rates(close_time: np.ndarray, rates: Mapping[int, Decimal] | None, default: Decimal) -> np.ndarray:
    """The last funding rate settled at or before each close time (``default`` before the first, or always
    when no history was downloaded)."""
    if not rates:
        return np.full(len(close_time), float(default))
    times = np.array(sorted(rates), dtype=np.int64)
    values = np.array([float(rates[t]) for t in times.tolist()])
    i = np.searchsorted(times, close_time, side="right") - 1
    return np.where(i >= 0, values[np.clip(i, 0, None)], float(default))


def rolling_24h(frame: KlineFrame) -> tuple[np.ndarray, ...]:
    """(open 24 h ago, high, low, volume, quote volume, change %) over the klines of the 24 h ending at each
    row, as Binance's rolling ticker (quote volume estimated from the typical price, as the sandbox does)."""
    n = max(1, DAY_MS // frame.interval_ms)
    high = pd.Series(frame.high).rolling(n, min_periods=1).max().to_numpy()
    low = pd.Series(frame.low).rolling(n, min_periods=1).min().to_numpy()
    vol = pd.Series(frame.volume).rolling(n, min_periods=1).sum().to_numpy()
    typical = (frame.open + frame.high + frame.low + frame.close) / 4.0
    quote = pd.Series(frame.volume * typical).rolling(n, min_periods=1).sum().to_numpy()
    first = np.maximum(np.arange(len(frame)) - n + 1, 0)
    opened = frame.open[first]
    change = np.where(opened != 0, (frame.close - opened) / np.where(opened != 0, opened, 1.0) * 100.0, 0.0)
    return opened, high, low, vol, quote, change


class MarketReplay:
    """Puts one backtest's exchange on the mark (where marks exist) and publishes what strategies asked for."""

    def __init__(self, bus: EventBus, exchange: SimulatedExchange, executions: Mapping[str, KlineFrame],
                 marks: Mapping[str, KlineFrame]) -> None:
        self._bus = bus
        self._exchange = exchange
        self._executions = dict(executions)
        self.marks = {sym: AlignedMarks.of(m, executions[sym]) for sym, m in marks.items() if sym in executions}
        self.events = 0

    @property
    def marked_symbols(self) -> set[str]:
        return {sym for sym, m in self.marks.items() if m.covered}

    def note(self) -> str:
        """One line for the report: where the mark price came from."""
        if not self.marked_symbols:
            return "mark price = last price (no mark-price klines in the store; `kinetic download` fetches them)"
        parts = [f"{sym} {m.covered:,}/{len(self._executions[sym]):,} klines"
                 for sym, m in sorted(self.marks.items()) if m.covered]
        missing = sorted(set(self._executions) - self.marked_symbols)
        tail = f"; last price for {', '.join(missing)}" if missing else ""
        return f"mark price from mark-price klines ({', '.join(parts)}{tail})"

    # ------------------------------------------------------------------------------- the exchange
    def attach_exchange(self) -> set[str]:
        """Subscribe the mark-aware kline handler of each marked symbol (in place of the broker's plain one:
        call before the broker subscribes, and leave these symbols out of its topics). Returns them."""
        for sym in self.marked_symbols:
            frame = self._executions[sym]
            self._bus.subscribe(KlineClosed, self._marked_handler(sym), topic=(sym, frame.timeframe))
        return self.marked_symbols

    def _marked_handler(self, sym: str) -> Callable[[KlineClosed], None]:
        ex, m = self._exchange, self.marks[sym]
        ot = self._executions[sym].open_time
        rows = {int(t): i for i, t in enumerate(ot.tolist())}
        mo, mh, ml, mc = (a.tolist() for a in (m.open, m.high, m.low, m.close))

        def on_kline(k: KlineClosed) -> None:
            i = rows[k.open_time]
            on_marked_kline(ex, k, mo[i], mh[i], ml[i], mc[i])

        return on_kline

    def equity_closes(self, timestamps: np.ndarray, closes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Prices to mark the equity curve at: the mark's close where there is one, else the close."""
        out = dict(closes)
        for sym in self.marked_symbols:
            e, m = self._executions[sym], self.marks[sym]
            idx = np.searchsorted(e.close_time, timestamps, side="right") - 1
            mark = np.where(idx >= 0, m.close[np.clip(idx, 0, None)], NAN)
            out[sym] = np.where(np.isnan(mark), closes[sym], mark)
        return out

    # ------------------------------------------------------------------------------- events
    def attach_events(self, wanted: MarketDataWanted, rates: Mapping[str, Mapping[int, Decimal]],
                      default_rate: Decimal, funding_interval_ms: int) -> None:
        """After each execution kline of a symbol some strategy asked about, publish its mark / ticker event
        (subscribe after the strategies, so they see the kline first)."""
        for sym in sorted(wanted.mark_price | wanted.ticker):
            frame = self._executions.get(sym)
            if frame is None:
                continue
            self._bus.subscribe(KlineClosed, self._event_handler(sym, frame, wanted, rates.get(sym), default_rate,
                                                                 funding_interval_ms), topic=(sym, frame.timeframe))

    def _event_handler(self, sym: str, frame: KlineFrame, wanted: MarketDataWanted,
                       rates: Mapping[int, Decimal] | None, default_rate: Decimal,
                       interval: int) -> Callable[[KlineClosed], None]:
        rows = {int(t): i for i, t in enumerate(frame.open_time.tolist())}
        m = self.marks.get(sym)
        mark = np.where(np.isnan(m.close), frame.close, m.close) if m is not None else frame.close
        marks, rate = mark.tolist(), settled_rates(frame.close_time, rates, default_rate).tolist()
        ticker = [a.tolist() for a in rolling_24h(frame)] if sym in wanted.ticker else None
        publish = self._bus.publish
        want_mark = sym in wanted.mark_price

        def on_kline(k: KlineClosed) -> None:
            i = rows[k.open_time]
            ts = k.ts_event
            self.events += 1
            if want_mark:
                publish(MarkPriceUpdated(symbol=sym, mark_price=marks[i], funding_rate=rate[i],
                                         next_funding_time=(ts // interval + 1) * interval, ts_event=ts, ts_init=ts),
                        sym)
            if ticker is not None:
                o, h, lo, v, q, pct = (col[i] for col in ticker)
                publish(TickerUpdated(symbol=sym, last_price=k.close, open_price=o, high_price=h, low_price=lo,
                                      volume=v, quote_volume=q, price_change_percent=pct, ts_event=ts, ts_init=ts),
                        sym)

        return on_kline


__all__ = ["AlignedMarks", "MarketReplay", "attach_market_hooks", "load_mark_frames", "rolling_24h", "settled_rates"]
