"""The journal as a gate: a command leaves only once its own row is committed; a full, read-only or broken
journal refuses it; a run folder the journal cannot write is found before anything is written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import CancelAllRequest, KlineClosed, OrderRequest
from kinetic_empire.live.doctor import FAIL, OK, check_run_folder
from kinetic_empire.live.journal import Journal, JournalUnavailable, read_events


def request(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="s" * 200, symbol="FILUSDT", side=Side.BUY,
                        order_type=OrderType.MARKET, quantity=Decimal(1), ts_event=1, ts_init=1)


def kline(i: int) -> KlineClosed:
    return KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=i * 60_000, open=1.0,
                       high=1.0, low=1.0, close=1.0, volume=1.0, ts_event=i, ts_init=i)


def test_a_full_disk_refuses_exactly_the_commands_it_did_not_keep(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    j._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk fills up after a few rows
    sent, refused = [], []
    for i in range(60):
        r = request(f"c{i}")
        j.record(r)
        try:
            j.confirm(r)
        except JournalUnavailable as exc:
            assert str(exc).startswith("JOURNAL_UNAVAILABLE") and "full" in str(exc)
            refused.append(r.client_order_id)
        else:
            sent.append(r.client_order_id)
    assert sent and refused and j.failure
    with pytest.raises(JournalUnavailable):
        j.confirm(request("never-recorded"))
    j._db.execute("PRAGMA max_page_count = 1073741823")  # space again: new commands go through
    late = request("late")
    j.record(late)
    j.confirm(late)
    j.record(CancelAllRequest(symbol="FILUSDT", strategy_id="op", ts_event=2, ts_init=2))
    j.close()
    kept = {e.client_order_id for e in read_events(path, ("OrderRequest",))}
    assert set(sent) | {"late"} == kept  # every command that may leave is in the journal, no refused one is


def test_events_a_failed_flush_could_not_write_are_kept_until_it_can(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = Journal(path, batch=10_000)
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    j._db.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(500):
        j.record(kline(i))
    assert j.flush() is False and "not flushed" in j.failure
    j._db.execute("PRAGMA max_page_count = 1073741823")
    assert j.flush() is True
    j.close()
    assert len(list(read_events(path))) == 500


def test_the_run_folder_check_finds_what_the_journal_cannot_write(tmp_path: Path) -> None:
    ok = check_run_folder(tmp_path / "new-run")
    assert ok.status == OK and not (tmp_path / "new-run").exists()  # a check leaves nothing behind
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert check_run_folder(blocker / "run").status == FAIL  # cannot even make the folder
    run = tmp_path / "run"
    (run / "journal.sqlite").mkdir(parents=True)
    bad = check_run_folder(run)
    assert bad.status == FAIL and "journal.sqlite" in bad.detail and bad.hint
    full = check_run_folder(tmp_path / "other", min_free_bytes=1 << 60)
    assert full.status == FAIL and "free" in full.detail

