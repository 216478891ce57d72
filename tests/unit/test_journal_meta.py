"""Journal meta reads back exactly what was written, whatever a string looks like."""

from __future__ import annotations

from pathlib import Path

from kinetic_empire.live.journal import Journal, read_meta


def test_strings_that_look_like_json_read_back_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    try:
        journal.set_meta(account="402913377150", venue="sandbox", flag="true", none="null", n=3,
                         fees={"maker": "0.0002"})
    finally:
        journal.close()
    meta = read_meta(path)
    assert meta["account"] == "402913377150" and meta["flag"] == "true" and meta["none"] == "null"
    assert meta["venue"] == "sandbox" and meta["n"] == 3 and meta["fees"] == {"maker": "0.0002"}
