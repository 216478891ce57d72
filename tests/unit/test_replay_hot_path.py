"""The replay's fast paths give exactly what the plain paths give (issue 17, targets 2, 3 and 5).

Each fast path is compared with the slow rule it replaces: precomputed crossovers with the scalar
comparison, the feed's fused handler chain with ``bus.publish``, the windowed scalar reads with the
array, the lazily built records with the dicts and rows they stand for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.errors import HandlerError
from kinetic_empire.core.events import KlineClosed
from kinetic_empire.data import KlineFrame, resample
from kinetic_empire.exchange.ledger import Rows
from kinetic_empire.strategy.series import _WINDOW, Cursor, Series, crossover, crossunder


def _pair(whole: bool, a: np.ndarray, b: np.ndarray) -> tuple[Cursor, Series, Series]:
    cur = Cursor()
    cur.whole = whole
    return cur, Series(a, cur, "a"), Series(b, cur, "b")


def _wiggly(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(0, 1, n), 1)  # rounded: many ties, where <= and < differ
    b = np.round(rng.normal(0, 1, n), 1)
    a[:7] = np.nan  # warm-up NaNs compare False in both rules
    b[3] = np.nan
    return a, b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_precomputed_crossovers_equal_the_scalar_rule(seed: int) -> None:
    a, b = _wiggly(2_000, seed)
    fast_cur, fa, fb = _pair(True, a, b)
    slow_cur, sa, sb = _pair(False, a, b)
    hits = 0
    for i in range(len(a)):
        fast_cur.i = slow_cur.i = i
        for fn in (crossover, crossunder):
            for args_f, args_s in (((fa, fb), (sa, sb)), ((fb, fa), (sb, sa)), ((fa, 0.5), (sa, 0.5))):
                got, want = fn(*args_f), fn(*args_s)
                assert got is want, (fn.__name__, i, args_s)
                hits += got
    assert hits > 100  # the data does cross, often
    assert fa._crossings and not sa._crossings  # the fast side did precompute; the live side never does
    # the scalar rule itself, spelled out once for a known crossing
    i = next(j for j in range(1, len(a)) if a[j - 1] <= b[j - 1] and a[j] > b[j])
    fast_cur.i = i
    assert crossover(fa, fb) and not crossunder(fa, fb)


def test_precomputed_crossover_reads_only_the_current_index() -> None:
    """A crossing at kline i is not visible at kline i-1 (nothing later leaks through the flags)."""
    a = np.array([0.0, 0.0, 0.0, 2.0, 2.0])
    b = np.ones(5)
    cur, sa, sb = _pair(True, a, b)
    seen = []
    for i in range(5):
        cur.i = i
        seen.append(crossover(sa, sb))
    assert seen == [False, False, False, True, False]


def test_windowed_scalar_reads_match_the_array_everywhere() -> None:
    n = 3 * _WINDOW + 17
    data = np.arange(n, dtype=np.float64) * 0.5
    cur = Cursor()
    s = Series(data, cur, "x")
    for i in (0, 5, _WINDOW - 1, _WINDOW, _WINDOW + 300, 2 * _WINDOW + 1, n - 1):
        cur.i = i
        assert s[-1] == data[i] and s[i] == data[i] and s[0] == data[0]
        if i >= 3:
            assert s[-3] == data[i - 2]
        assert type(s[-1]) is float
        with pytest.raises(IndexError, match="in the future"):
            s[i + 1]
    for i in range(n):  # the common walk: every kline, reading the last two values
        cur.i = i
        assert s[-1] == data[i]
        if i:
            assert s[-2] == data[i - 1]


def _frame(n: int) -> KlineFrame:
    t = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 60_000
    c = 10.0 + np.arange(n, dtype=np.float64)
    return KlineFrame("FILUSDT", "1m", t, c - 0.25, c + 1, c - 1, c, np.arange(n) + 1.5, source="test")


def test_fused_feed_delivers_what_publish_delivers_and_follows_subscriptions() -> None:
    frame = _frame(50)
    log: list[tuple[str, int, int]] = []
    bus = EventBus()
    clock = ReplayClock()
    topic = ("FILUSDT", "1m")

    def late(k: KlineClosed) -> None:
        log.append(("late", k.open_time, clock.now_ms()))

    def first(k: KlineClosed) -> None:
        log.append(("first", k.open_time, clock.now_ms()))
        if k.open_time == frame.open_time[10]:
            bus.subscribe(KlineClosed, late, topic=topic)  # takes effect from the next kline

    def second(k: KlineClosed) -> None:
        log.append(("second", k.open_time, clock.now_ms()))

    bus.subscribe(KlineClosed, first, topic=topic)
    bus.subscribe(KlineClosed, second, topic=topic)
    seen: list[KlineClosed] = []
    bus.subscribe(KlineClosed, seen.append, topic=topic)
    assert ReplayFeed(bus, clock, [Stream(frame, 2)]).run() == 48
    cols = [getattr(frame, c).tolist() for c in ("open_time", "open", "high", "low", "close", "volume")]
    built = [KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=t, open=o, high=h, low=lo, close=c, volume=v,
                         ts_event=t + 59_999, ts_init=t + 59_999) for t, o, h, lo, c, v in zip(*cols)][2:]  # fmt: skip
    assert seen == built and all(type(k) is KlineClosed for k in seen)  # every field, as the frozen __init__ makes it
    expected = []
    for n, (ot, ct) in enumerate(zip(frame.open_time.tolist(), frame.close_time.tolist())):
        if n < 2:
            continue
        expected += [("first", ot, ct), ("second", ot, ct)] + ([("late", ot, ct)] if n > 10 else [])
    assert log == expected


def test_fused_feed_names_the_failing_handler_and_the_kline() -> None:
    frame = _frame(30)
    bus = EventBus()
    calls: list[int] = []
    bus.subscribe(KlineClosed, calls.append, topic=("FILUSDT", "1m"))

    def broken(k: KlineClosed) -> None:
        if k.open_time == frame.open_time[20]:
            raise ValueError("boom")

    bus.subscribe(KlineClosed, broken, topic=("FILUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda k: None, topic=("FILUSDT", "1m"))
    with pytest.raises(HandlerError) as info:
        ReplayFeed(bus, ReplayClock(), [Stream(frame)]).run()
    assert "broken" in str(info.value) and "boom" in str(info.value)
    assert info.value.event.open_time == frame.open_time[20]
    assert len(calls) == 21  # the first handler had the failing kline, nothing after it ran


def test_rows_read_like_the_list_of_dicts_they_replace() -> None:
    keys = ("id", "symbol", "qty")
    rows = Rows(keys)
    plain: list[dict[str, object]] = []
    for n in range(5):
        rows.add(n, "FILUSDT", n * 2)
        plain.append({"id": n, "symbol": "FILUSDT", "qty": n * 2})
    rows.append({"id": 9, "symbol": "X", "qty": 1})
    plain.append({"id": 9, "symbol": "X", "qty": 1})
    rows.append({"odd": True})  # a record of another shape (an older state file) is kept as it is
    plain.append({"odd": True})
    assert len(rows) == len(plain) and rows == plain and list(rows) == plain
    assert rows[2] == plain[2] and rows[-1] == {"odd": True} and rows[1:4] == plain[1:4]
    rows[:] = plain[:2]
    assert rows == plain[:2]
    copy = rows[0]
    copy["qty"] = 99  # a read is a copy: the record itself does not change
    assert rows[0]["qty"] == 0


def _merged_log(on_error) -> list[tuple[str, str, int, int]]:
    return [entry[:4] for entry in _merged_klines(on_error)]


def _merged_klines(on_error) -> list[tuple[Any, ...]]:
    """Two symbols, 1m and 5m each (one with warm-up rows), replayed merged: what each handler saw, in order."""
    one = _frame(40).shifted(100_000)  # on the 5m grid: 1m and 5m klines close together every fifth minute
    other = KlineFrame("BTCUSDT", "1m", one.open_time[3:] + 60_000, one.open[3:], one.high[3:], one.low[3:],
                       one.close[3:], one.volume[3:], source="test")  # fmt: skip
    five = resample(one, "5m")
    bus = EventBus(on_error=on_error)
    clock = ReplayClock()
    log: list[tuple[Any, ...]] = []
    frames = {}
    for f in (one, five, other):
        topic = (f.symbol, f.timeframe)
        frames[topic] = f
        bus.subscribe(KlineClosed, lambda k, t=topic: log.append((*t, k.open_time, clock.now_ms(), k)), topic=topic)
    streams = [Stream(one, 2), Stream(five), Stream(other, 1)]
    assert ReplayFeed(bus, clock, streams).run() == sum(s.count for s in streams)
    for sym, tf, ot, _ct, k in log:  # each kline is its frame's row, every field
        f = frames[(sym, tf)]
        i = int(np.searchsorted(f.open_time, ot))
        row = (f.open[i], f.high[i], f.low[i], f.close[i], f.volume[i], f.open_time[i] + f.interval_ms - 1)
        assert (k.open, k.high, k.low, k.close, k.volume, k.ts_event) == row and k.ts_init == k.ts_event
    return log


def test_merged_streams_come_in_close_time_order_finer_first_and_as_publish_gives_them() -> None:
    fused = _merged_log(None)
    published = _merged_log(lambda error: None)  # a bus with an error sink: delivery through bus.publish
    assert fused == published
    tf_ms = {"1m": 60_000, "5m": 300_000}
    stream_of = {("FILUSDT", "1m"): 0, ("FILUSDT", "5m"): 1, ("BTCUSDT", "1m"): 2}
    keys = [(ct, tf_ms[tf], stream_of[(sym, tf)]) for sym, tf, _ot, ct in fused]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert len({ct for ct, _tf, _s in keys}) < len(keys)  # there were ties to order
    assert all(ct == ot + tf_ms[tf] - 1 for _s, tf, ot, ct in fused)
    assert sum(1 for e in fused if e[:2] == ("FILUSDT", "1m")) == 38  # warm-up rows skipped
    assert sum(1 for e in fused if e[:2] == ("BTCUSDT", "1m")) == 36


def test_merged_feed_names_the_failing_handler() -> None:
    one = _frame(20)
    bus = EventBus()

    def broken(k: KlineClosed) -> None:
        if k.timeframe == "5m":
            raise ValueError("boom")

    bus.subscribe(KlineClosed, broken)
    with pytest.raises(HandlerError) as info:
        ReplayFeed(bus, ReplayClock(), [Stream(one), Stream(five := resample(one, "5m"))]).run()
    assert "broken" in str(info.value) and info.value.event.open_time == five.open_time[0]
