"""The journal's WAL is checkpointed by its own thread, never inside a commit (an order's commit would pay the
checkpoint's fsyncs: 10-30 ms), and every committed row stays readable whatever the checkpointer does."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import KlineClosed, OrderRequest
from kinetic_empire.live import journal as journal_mod
from kinetic_empire.live.journal import Journal, read_events
from tests.support.waiting import until


def request(i: int) -> OrderRequest:
    return OrderRequest(client_order_id=f"c{i}", intent_id=f"i{i}", strategy_id="s" * 300, symbol="FILUSDT",
                        side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(1), ts_event=i, ts_init=i)


def kline(i: int) -> KlineClosed:
    return KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=i * 60_000, open=1.0, high=1.0, low=1.0,
                       close=1.0, volume=1.0, ts_event=i, ts_init=i)


def wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def test_a_commit_never_checkpoints_the_checkpointer_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    checkpoints: list[str] = []
    real = journal_mod._Checkpointer._run

    def run(self: journal_mod._Checkpointer) -> None:
        checkpoints.append(threading.current_thread().name)
        real(self)

    journal_mod._Checkpointer._run = run  # type: ignore[method-assign]
    try:
        for i in range(3000):  # one commit per order, as the execution port's gate does: over 1000 WAL pages
            r = request(i)
            j.record(r)
            j.confirm(r)
        assert j._checkpointer.done == 0 and not checkpoints
        with contextlib.closing(sqlite3.connect(path)) as other:  # frames in the WAL that no commit copied back
            _busy, frames, _copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert frames > 1000, "a commit checkpointed the WAL (SQLite's automatic checkpoint is on)"
        for i in range(3000, 3200):
            r = request(i)
            j.record(r)
            j.confirm(r)
        j.record(kline(1))
        assert j.flush()
        asyncio.run(until(lambda: j._checkpointer.done >= 1, "the checkpointer copies the WAL"))
        assert checkpoints == ["journal-checkpoint"]  # on its own thread, not the caller's
        r = request(99_999)  # the journal goes on writing after a checkpoint
        j.record(r)
        j.confirm(r)
    finally:
        journal_mod._Checkpointer._run = real  # type: ignore[method-assign]
        j.close()
    ids = [e.client_order_id for e in read_events(path, ("OrderRequest",))]
    assert ids == [f"c{i}" for i in range(3200)] + ["c99999"]
    assert len(list(read_events(path, ("KlineClosed",)))) == 1
    assert wal_pages(path) == 0  # close truncates the WAL


def test_a_small_wal_is_left_alone_and_close_stops_no_thread(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.sqlite")
    r = request(1)
    j.record(r)
    j.confirm(r)
    assert j.flush()
    assert j._checkpointer._thread is None  # below the mark: no thread was ever started
    for i in range(2, 2 + journal_mod.CHECKPOINT_COMMITS):
        r = request(i)
        j.record(r)
        j.confirm(r)
    assert j.flush()
    assert j._checkpointer._thread is not None  # the mark reached: woken once, the count starts again
    assert j._commits == 0
    j.close()
