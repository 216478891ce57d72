"""The ``--state`` file format: checksummed lines, torn tails, corruption, sequence, version 1, the lock."""

from __future__ import annotations

import fcntl
import zlib
from pathlib import Path

import pytest

from kinetic_empire.sandbox.statefile import StateFile, StateFileError, encode, parse


def write(path: Path, *docs: dict[str, object], tail: bytes = b"") -> bytes:
    data = b"".join(encode(d) for d in docs) + tail
    path.write_bytes(data)
    return data


def test_snapshot_then_records(tmp_path: Path) -> None:
    path = tmp_path / "state"
    write(path, {"version": 2, "seq": 4}, {"seq": 5, "a": 1}, {"seq": 6, "a": 2})
    loaded = parse(path, path.read_bytes())
    assert loaded.snapshot == {"version": 2, "seq": 4}
    assert [r["a"] for r in loaded.records] == [1, 2]
    assert loaded.torn_bytes == 0 and loaded.legacy is None


def test_a_write_cut_short_is_dropped_and_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "state"
    whole = encode({"seq": 2, "a": 1})
    write(path, {"version": 2, "seq": 1}, tail=whole[:-7])  # the crash came mid-write: no newline
    sf = StateFile(path)
    loaded = sf.open()
    sf.close()
    assert loaded.records == [] and loaded.torn_bytes == len(whole) - 7
    assert (tmp_path / "state.torn").read_bytes() == whole[:-7]


@pytest.mark.parametrize("damage", ["checksum", "json", "sequence", "version"])
def test_a_corrupt_file_is_refused_and_left_as_it_is(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "state"
    docs: list[dict[str, object]] = [{"version": 2, "seq": 1}, {"seq": 2, "a": 1}, {"seq": 3, "a": 2}]
    if damage == "sequence":
        docs[2]["seq"] = 5
    if damage == "version":
        docs[0]["version"] = 9
    data = write(path, *docs)
    if damage == "checksum":
        data = data.replace(b'"a":1', b'"a":7')
    if damage == "json":
        line = b'{"seq":2,'
        data = encode(docs[0]) + b"%08x " % zlib.crc32(line) + line + b"\n" + encode(docs[2])
    path.write_bytes(data)
    sf = StateFile(path)
    with pytest.raises(StateFileError) as err:
        sf.open()
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and "left as it is" in message
    assert path.read_bytes() == data
    with (tmp_path / "state.lock").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the refused open released its lock


def test_version_1_is_recognised_for_migration(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version":1,"clock":5,"accounts":{}}')
    loaded = parse(path, path.read_bytes())
    assert loaded.legacy == {"version": 1, "clock": 5, "accounts": {}} and loaded.snapshot is None
    path.write_text('{"version":1,"clock":')
    with pytest.raises(StateFileError, match="not a readable state file"):
        parse(path, path.read_bytes())


def test_one_process_per_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    first = StateFile(path)
    assert first.open().snapshot is None
    with pytest.raises(StateFileError, match=r"in use by another sandbox \(pid \d+\)"):
        StateFile(path).open()
    first.close()
    StateFile(path).open()


def test_snapshot_replaces_and_appends_follow(tmp_path: Path) -> None:
    path = tmp_path / "state"
    sf = StateFile(path)
    sf.open()
    sf.write_snapshot({"version": 2, "seq": 0})
    sf.append({"seq": 1, "x": "a"})
    sf.write_snapshot({"version": 2, "seq": 1, "x": "a"})
    sf.append({"seq": 2, "x": "b"})
    sf.close()
    loaded = parse(path, path.read_bytes())
    assert loaded.snapshot == {"version": 2, "seq": 1, "x": "a"} and loaded.records == [{"seq": 2, "x": "b"}]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "state.tmp").exists()
