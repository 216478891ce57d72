"""Files replaced all together or not at all: written beside their destination, then renamed into place.

A reader (a backtest, another download) must never see a half-written partition. Each file of a batch
is written under a hidden temporary name in its destination folder (same filesystem, so the rename is
atomic); every file is written before the first rename; and on any failure, an interrupt included, the
temporary files are removed and the files already there stay as they were. Used by the kline store,
the funding store and the download coverage records.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_empire.core.processes import pid_alive

_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")


def sweep_stale(folder: Path) -> list[Path]:
    """Remove temporary files left in `folder` by a process that no longer runs (a SIGKILL mid-write).

    Called before each batch writes into a folder, so leftovers do not pile up; a temporary file of a
    process that is still alive (another import writing now) is left alone. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or pid_alive(int(m["pid"])):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # gone already, or not ours to remove: harmless
    return removed



class StagedFiles:
    """A batch of file writes committed when the ``with`` block ends without an exception::

        with StagedFiles() as batch:
            batch.parquet(table, folder / "2023-08.parquet")
        changed = batch.destinations
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._swept: set[Path] = set()

    @property
    def destinations(self) -> list[Path]:
        """The files this batch writes (all replaced once the block has ended cleanly)."""
        return [final for _, final in self._staged]

    def path_for(self, final: Path) -> Path:
        """A fresh temporary path to write ``final``'s new content to; it is moved there on commit."""
        if final.parent not in self._swept:
            self._swept.add(final.parent)
            sweep_stale(final.parent)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        self._staged.append((tmp, final))
        return tmp

    def parquet(self, table: pa.Table, final: Path, **options: Any) -> None:
        pq.write_table(table, self.path_for(final), **options)

    def text(self, content: str, final: Path) -> None:
        self.path_for(final).write_text(content, encoding="utf-8")

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                for tmp, final in self._staged:
                    os.replace(tmp, final)
        finally:
            for tmp, _ in self._staged:
                tmp.unlink(missing_ok=True)
