"""A journal that cannot be read back gets one clear message naming the file (and the event), never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.core import events as ev
from kinetic_empire.core.enums import BalanceReason
from kinetic_empire.live.journal import Journal, JournalCorrupt, read_events, read_meta

REPO = Path(__file__).resolve().parents[2]


def make_run(folder: Path) -> Path:
    path = folder / "journal.sqlite"
    journal = Journal(path)
    try:
        journal.set_meta(run_id=folder.name, venue="sandbox")
        for i in range(50):
            journal.record(ev.BalanceChanged(asset="USDT", wallet_balance=Decimal(1000 + i), change=Decimal(1),
                                             reason=BalanceReason.ORDER, ts_event=i, ts_init=i))
        journal.flush()
    finally:
        journal.close()
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def bit_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, 100):  # the header: "SQLite format 3" and the page size
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def junk_payload(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET payload = '{\"asset\": \"USDT\", \"wallet_balance\": \"lots\"}' WHERE seq = 7")
    db.commit()
    db.close()


def unknown_kind(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET kind = 'Bogus' WHERE seq = 9")
    db.commit()
    db.close()


@pytest.mark.parametrize(("damage", "message"), [
    (truncate, r"journal .*journal\.sqlite: not a readable run journal"),
    (bit_flip, r"journal .*journal\.sqlite: not a readable run journal"),
    (emptied, r"journal .*journal\.sqlite: not a readable run journal"),
    (junk_payload, r"journal .*journal\.sqlite, event 7: unreadable BalanceChanged payload"),
    (unknown_kind, r"journal .*journal\.sqlite, event 9: unknown event kind 'Bogus'"),
])
def test_damaged_journals_are_named(tmp_path: Path, damage, message: str) -> None:
    path = make_run(tmp_path / "r1")
    assert len(list(read_events(path))) == 50
    damage(path)
    with pytest.raises(JournalCorrupt, match=message):
        read_meta(path)
        list(read_events(path))


def test_kinetic_report_on_a_damaged_journal_says_so_in_one_line(tmp_path: Path) -> None:
    path = make_run(tmp_path / "runs" / "r1")
    truncate(path)
    proc = subprocess.run([sys.executable, "-m", "kinetic_empire", "report", "r1", "--runs-dir",
                           str(tmp_path / "runs")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "not a readable run journal" in proc.stderr, proc.stderr


def test_a_missing_journal_is_named(tmp_path: Path) -> None:
    with pytest.raises(JournalCorrupt, match=r"journal .*nothere\.sqlite: no such file"):
        read_meta(tmp_path / "nothere.sqlite")
