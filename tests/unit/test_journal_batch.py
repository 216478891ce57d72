"""The journal's hot-path economies keep its guarantees: commands of one kline are inserted together at the first
confirm, yet a row the disk refuses loses exactly that command; market data encoded at the flush reads back the
same as if encoded at once; a backlog is written in slices, in bus order, and never inside ``record``."""

from __future__ import annotations

import contextlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.core.enums import IntentAction, OrderType, Side
from kinetic_empire.core.events import KlineClosed, MarkPriceUpdated, OrderIntent, OrderRequest
from kinetic_empire.live.journal import Journal, JournalUnavailable, read_events


def request(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id="i", strategy_id="s", symbol="FILUSDT", side=Side.BUY,
                        order_type=OrderType.MARKET, quantity=Decimal("1.5"), ts_event=1, ts_init=1)


def intent() -> OrderIntent:
    return OrderIntent(intent_id="i", strategy_id="s", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                       reference_price=4.25, ts_event=1, ts_init=1)


def kline(i: int) -> KlineClosed:
    return KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=i * 60_000, open=1.0 + i / 7, high=2.0,
                       low=0.5, close=1.0 / 3, volume=1e-7 * i, ts_event=i, ts_init=i)


def refuse(path: Path, cid: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.client_order_id = ? BEGIN "
                   "SELECT RAISE(ABORT, 'database or disk is full'); END".replace("?", f"'{cid}'"))
        db.commit()


@pytest.mark.parametrize("bad", ["a", "b", "c"])
def test_a_refused_row_in_a_batch_loses_only_its_own_command(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    refuse(path, bad)
    requests = [request("a"), request("b"), request("c")]
    for c in [intent(), *requests]:
        j.record(c)
    sent = []
    for r in requests:
        try:
            j.confirm(r)
        except JournalUnavailable as exc:
            assert f"OrderRequest {bad} not journaled" in str(exc) and "disk is full" in str(exc)
        else:
            sent.append(r.client_order_id)
    assert sent == [c for c in "abc" if c != bad]
    j.close()
    assert [e.client_order_id for e in read_events(path, ("OrderRequest",))] == sent
    assert len(list(read_events(path, ("OrderIntent",)))) == 1


def test_commands_are_inserted_together_at_the_first_confirm(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.sqlite")
    a, b = request("a"), request("b")
    j.record(intent())
    j.record(a)
    j.record(b)
    assert j.written == 0 and j.backlog == 3  # nothing written inside the kline's path
    j.confirm(a)
    assert j.written == 3 and j.backlog == 0
    j.confirm(b)  # committed with a's
    assert j.written == 3
    j.close()


def test_market_data_encoded_at_the_flush_reads_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    events = [kline(i) for i in range(5)] + [MarkPriceUpdated(symbol="FILUSDT", mark_price=4.1234567, index_price=4.12,
                                                               funding_rate=0.0001, next_funding_time=9, ts_event=1,
                                                               ts_init=2)]
    for e in events:
        j.record(e)
    j.close()
    assert list(read_events(path)) == events


def test_a_full_batch_asks_for_a_flush_and_slices_keep_bus_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path, batch=10)
    asked = []
    j.on_backlog = lambda: asked.append(j.backlog)
    r = request("r")
    for i in range(25):
        j.record(kline(i))
        if i == 12:
            j.record(r)
    assert j.written == 0 and asked and asked[0] == 10  # asked, not flushed inside record
    j.confirm(r)  # the command goes in at once, ahead of earlier klines: its seq keeps its place
    while j.backlog:
        assert j.flush(max_rows=4)
    j.close()
    got = list(read_events(path))
    assert [getattr(e, "open_time", None) for e in got] == [i * 60_000 for i in range(13)] + [None] + [
        i * 60_000 for i in range(13, 25)]


def test_a_backlog_flushed_in_slices_lets_the_loop_run_between_them(tmp_path: Path) -> None:
    import asyncio

    async def body() -> None:
        j = Journal(tmp_path / "journal.sqlite", batch=10_000)
        for i in range(40):
            j.record(kline(i))
        seen: list[int] = []

        async def watch() -> None:
            while j.backlog:
                seen.append(j.backlog)
                await asyncio.sleep(0)

        watcher = asyncio.get_running_loop().create_task(watch())
        assert await j.flush_in_slices(16)
        await watcher
        assert j.backlog == 0 and j.written == 40 and seen == [24, 8]  # the loop ran after each slice
        j.close()

    asyncio.run(body())
