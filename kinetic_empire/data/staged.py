"""Files replaced all together or not at all: written beside their destination, then renamed into place.

A reader (a backtest, another download) must never see a half-written partition. Each file of a batch
is written under a hidden temporary name in its destination folder (same filesystem, so the rename is
atomic); every file is written before the first rename; and on any failure, an interrupt included, the
temporary files are removed and the files already there stay as they were. Used by the kline store,
the funding store and the download coverage records.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class StagedFiles:
    """A batch of file writes committed when the ``with`` block ends without an exception::

        with StagedFiles() as batch:
            batch.parquet(table, folder / "2023-08.parquet")
        changed = batch.destinations
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    @property
    def destinations(self) -> list[Path]:
        """The files this batch writes (all replaced once the block has ended cleanly)."""
        return [final for _, final in self._staged]

    def path_for(self, final: Path) -> Path:
        """A fresh temporary path to write ``final``'s new content to; it is moved there on commit."""
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
