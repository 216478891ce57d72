"""The journal's WAL checkpoints, on a thread of their own (see :class:`WalCheckpointer`)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# When a flush wakes the checkpointer: below SQLite's own mark of 1000 WAL pages (a command commit appends one or
# two pages, now that no index but the rowid's is written; a flush's rows about one page per eight). The WAL file's
# size cannot tell: it keeps its size once reused. Each checkpoint shares the disk with the commits that overlap it
# (measured: 1-20 ms on an order's commit instead of 0.1-0.3), so fewer, not smaller: orders are committed one by one
# as they leave (two commits for a kline that flips a position), and 250 commits checkpointed twice as often.
CHECKPOINT_COMMITS = 500
CHECKPOINT_ROWS = 16000


class WalCheckpointer:
    """Copies the WAL into the database on a thread of its own, so its fsyncs never stall the event loop.

    :meth:`request` (after a flush, every :data:`CHECKPOINT_COMMITS` commits or :data:`CHECKPOINT_ROWS` rows)
    wakes it; it opens its own connection and runs a PASSIVE checkpoint, which takes no lock a writer needs: the
    journal's commits go on meanwhile (one that overlaps it shares the disk: a few ms rather than a checkpoint's
    10-30). SQLite releases the GIL while it works. A failure is only logged: the WAL keeps every committed row,
    and the next checkpoint (or close's TRUNCATE) tries again.

    A checkpoint that copied the whole WAL lets the next write transaction start the WAL over, and that one
    fsyncs the WAL's new header (synchronous=NORMAL does, so that a restarted WAL cannot be mistaken for the old
    one after a power cut): measured 4-23 ms, inside whichever commit came next, usually an order's. So the
    checkpointer makes that write itself (a row in and out of ``meta``: pages written, nothing changed), if it
    gets the write lock at once; if the journal is writing just then, the journal restarts the WAL as before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self.restarts = 0
        """WAL restarts made here (each spares a later commit an fsync)."""
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                try:
                    busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    log.debug("journal %s: checkpoint failed (%s); the WAL keeps every row", self.path, exc)
                    continue
                if not busy and frames > 0 and copied == frames:
                    self._restart_wal(db)
                self.done += 1

        except sqlite3.Error as exc:
            log.debug("journal %s: checkpointer cannot open the file (%s)", self.path, exc)
        finally:
            if db is not None:
                db.close()

    def _restart_wal(self, db: sqlite3.Connection) -> None:
        """Start the WAL over (and fsync its header) here, not in the journal's next commit."""
        try:
            db.execute("BEGIN IMMEDIATE")  # timeout=0: the journal is writing -> busy at once, and it restarts it
        except sqlite3.Error:
            return
        try:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('wal_restart', '')")
            db.execute("DELETE FROM meta WHERE key = 'wal_restart'")
            db.execute("COMMIT")
            self.restarts += 1
        except sqlite3.Error as exc:
            log.debug("journal %s: WAL restart write failed (%s)", self.path, exc)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop = True
            self._wake.set()
            thread.join()
