"""The bad-input suite: every generated broken input gets one clear error and changes nothing.

The cases come from :mod:`tests.support.bad_inputs`; the promises are the same for all of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kinetic_empire.cli import main
from tests.support.bad_inputs import BadInput, cases

CASES = list(cases())


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: BadInput, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything written by default lands here, where the test sees it
    world = tmp_path / "world"
    world.mkdir()
    argv = case.setup(world)
    capsys.readouterr()
    before = snapshot(tmp_path)

    code = main(argv)  # an exception escaping here is the traceback a user would see

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, f"{case.id}: accepted ({err!r})"
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(("error: ", "kinetic sandbox: ")), \
        f"{case.id}: not one error line: {lines}"
    assert len(lines[0]) < 600, f"{case.id}: the message is not short: {lines[0]}"
    assert re.search(case.message, lines[0]), f"{case.id}: {lines[0]!r} does not match {case.message!r}"
    after = snapshot(tmp_path)
    changed = sorted(k for k in before if after.get(k) != before[k])
    # Reading a WAL-mode journal (even read-only) leaves SQLite's shared-memory index beside it: not data.
    added = sorted(k for k in set(after) - set(before) if not (k.endswith("-shm") or (k.endswith("-wal")
                                                                                      and not after[k])))
    assert not changed, f"{case.id}: changed {changed}"
    assert not added, f"{case.id}: left {added}"


def test_the_generator_covers_every_class() -> None:
    assert {c.kind for c in CASES} == {"data", "store", "config", "flag", "journal"}
    assert len({c.id for c in CASES}) == len(CASES)
