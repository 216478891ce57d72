"""The checkpointer restarts the WAL itself after a complete checkpoint, so the journal's next commit (an order's,
usually) does not: a WAL restart rewrites the WAL header (new salts) and fsyncs it, 4-23 ms measured. The header's
salts tell who restarted it: they change in the checkpointer's write, not in the journal's commit after it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderRequest
from kinetic_empire.live.journal import Journal, read_events, read_meta
from kinetic_empire.live.wal_checkpoint import WalCheckpointer
from tests.support.waiting import until


def request(i: int) -> OrderRequest:
    return OrderRequest(client_order_id=f"c{i}", intent_id=f"i{i}", strategy_id="s", symbol="FILUSDT",
                        side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(1), ts_event=i, ts_init=i)


def salts(path: Path) -> bytes:
    """The WAL header's salts (bytes 16-23): new ones each time the WAL starts over."""
    with open(f"{path}-wal", "rb") as f:
        return f.read(24)[16:24]


def place(j: Journal, i: int) -> None:
    r = request(i)
    j.record(r)
    j.confirm(r)


def test_the_checkpointer_restarts_the_wal_so_the_next_order_commit_does_not(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    j.set_meta(run_id="r1")
    try:
        for i in range(50):
            place(j, i)
        before = salts(path)
        checkpointer: WalCheckpointer = j._checkpointer
        checkpointer.request()
        asyncio.run(until(lambda: checkpointer.done == 1, "the checkpoint"))
        restarted = salts(path)
        assert restarted != before, "the checkpointer's write did not start the WAL over"
        place(j, 50)  # the order after the checkpoint: appends to the restarted WAL, no header rewrite
        assert salts(path) == restarted, "the journal's commit restarted the WAL (and fsynced its header)"
    finally:
        j.close()
    assert [e.client_order_id for e in read_events(path, ("OrderRequest",))] == [f"c{i}" for i in range(51)]
    assert read_meta(path) == {"run_id": "r1"}  # the restart write leaves nothing behind


def test_while_the_journal_writes_the_checkpointer_leaves_the_restart_to_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    try:
        for i in range(20):
            place(j, i)
        r = request(20)
        j.record(r)
        j._insert_commands()  # a write transaction open: the checkpointer must not wait for the lock
        checkpointer: WalCheckpointer = j._checkpointer
        checkpointer.request()
        asyncio.run(until(lambda: checkpointer.done == 1, "the checkpoint"))
        assert checkpointer.restarts == 0
        j.confirm(r)
    finally:
        j.close()
    assert len(list(read_events(path, ("OrderRequest",)))) == 21
