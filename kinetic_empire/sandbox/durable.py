"""Write-through persistence for ``--state``: every change is in the file before anyone hears of it.

A *unit of work* is one REST request, one admin request, one replay phase or one countdown cancel. At
its end :meth:`DurableState.commit` collects what changed (orders touched by an event or changed by a
price update, new trades and income, the wallet, books, id counters, the replay position) into one
record and appends it with one ``write()``. The server calls it before the HTTP answer is sent, and the
venue before a replay phase's or countdown's stream messages can be sent (they wait in per-connection
queues until the event loop runs again). Every known unit commits synchronously like that; as a safety
net, any exchange event outside them schedules a commit for the event loop's next turn.

Guarantee: a SIGKILL (or any crash of the process) loses nothing that was acknowledged: the kernel has
the bytes once ``write()`` returns. Power loss or an OS crash can lose what was written after the last
fsync: one runs in a worker thread every ``state_fsync_interval_s`` (1 s) when anything was written,
and at compaction and shutdown, so a per-request fsync (milliseconds each) is not paid.

If a write fails (disk full, I/O error) the sandbox stops at once: the request gets 503, every stream
connection is cut (queued events are never sent), the replay halts, and ``on_failure`` is told why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..exchange.state import book_fingerprint, book_record, books, open_orders, order_by_id, order_fingerprint
from .state import (
    account_digest,
    account_ids,
    account_modes,
    algo_record,
    apply,
    from_v1,
    full_order_record,
    image_of,
    replay_record,
    restore,
    series_record,
)
from .statefile import Loaded, StateFile, StateFileError, StateWriteError

if TYPE_CHECKING:
    from .accounts import Account
    from .venue import SandboxVenue

log = logging.getLogger(__name__)

ID_BLOCK = 1000  # ids reserved ahead of use; a restart skips at most this many per counter
COMPACT_MIN_BYTES = 8 << 20  # compact when the log passes this and twice the snapshot


class _Written:
    """What the file holds for one account (to write only what changed)."""

    __slots__ = ("books", "ids", "income", "modes", "open", "reserved", "trades", "wallet")

    def __init__(self, acct: Account) -> None:
        ex = acct.exchange
        self.wallet = ex.wallet
        self.books = {sym: book_fingerprint(b) for sym, b in books(ex).items()}
        self.open = {o.order_id: _fingerprint(acct, o.order_id) for o in open_orders(ex)}
        self.trades = len(ex.trades)
        self.income = len(ex.income)
        self.ids = account_ids(acct)
        self.reserved = {name: value + ID_BLOCK for name, value in self.ids.items()}
        self.modes = account_modes(acct)


def _fingerprint(acct: Account, order_id: int) -> tuple[Any, ...]:
    sim = order_by_id(acct.exchange, order_id)
    assert sim is not None
    return order_fingerprint(sim), algo_record(acct.algos.get(order_id))


class DurableState:
    """Commits the venue's changes to a :class:`StateFile`, one record per unit of work."""

    def __init__(self, venue: SandboxVenue, file: StateFile, orphans: dict[str, Any],
                 on_failure: Callable[[str], None]) -> None:
        self.venue = venue
        self.file = file
        self.orphans = orphans  # accounts in the file that have no key this run: carried over untouched
        self.on_failure = on_failure
        self.seq = 0
        self.starts = 0  # how many times this file has been opened (reseeds generated client ids)
        self.failed: str | None = None
        self._scheduled = False
        self._accounts = [(account_digest(k), a, _Written(a)) for k, a in venue.accounts.items()]
        self._replay = replay_record(venue)
        self._series = {s.symbol: series_record(s) for s in venue.replay.series}

    def begin(self, seq: int, starts: int) -> None:
        """Write the starting snapshot (ids reserved ahead), then hook into the venue and its accounts."""
        self.seq, self.starts = seq, starts
        self.venue.reseed_client_ids(starts)
        self.compact()
        for _, acct, _ in self._accounts:
            acct.on_change = self.schedule
        self.venue.on_commit = self.commit

    # ------------------------------------------------------------------------------------ commit
    def schedule(self) -> None:
        """An exchange event happened: commit at the event loop's next turn (the known units commit sooner)."""
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the synchronous caller commits at the end of its unit
        self._scheduled = True
        loop.call_soon(self._scheduled_commit)

    def _scheduled_commit(self) -> None:
        self._scheduled = False
        if self.failed is None:
            with contextlib.suppress(StateWriteError):  # reported through on_failure
                self.commit()

    def commit(self) -> None:
        """Append one record with everything changed since the last one; nothing if nothing changed."""
        if self.failed is not None:
            raise StateWriteError(self.failed)
        record: dict[str, Any] = {}
        replay = self._replay_change()
        if replay is not None:
            record["replay"] = replay
        changes = {}
        for digest, acct, written in self._accounts:
            change = self._account_change(acct, written)
            if change:
                changes[digest] = change
        if changes:
            record["accounts"] = changes
        if not record:
            return
        self.seq += 1
        try:
            self.file.append({"seq": self.seq, **record})
            if self.file.log_bytes > max(COMPACT_MIN_BYTES, 2 * self.file.snapshot_bytes):
                self.compact()
        except OSError as exc:
            self._fail(f"cannot write the state file {self.file.path}: {exc.strerror or exc}")
            raise StateWriteError(self.failed) from None

    def image(self) -> dict[str, Any]:
        """The in-memory state in the file's shape (after a commit the file holds exactly this)."""
        reserved = {digest: dict(w.reserved) for digest, _, w in self._accounts}
        return {**image_of(self.venue, self.seq, reserved, self.orphans), "starts": self.starts}

    def compact(self) -> None:
        """Replace the file with a snapshot of the (fully committed) state."""
        self.file.write_snapshot(self.image())

    def _fail(self, message: str) -> None:
        self.failed = message
        self.venue.halted = message
        log.error("sandbox: %s; stopped (nothing unwritten was acknowledged)", message)
        self.on_failure(message)

    def _replay_change(self) -> dict[str, Any] | None:
        now = replay_record(self.venue)
        if now == self._replay:
            return None
        self._replay = now
        series = {}
        for s in self.venue.replay.series:
            rec = series_record(s)
            if rec != self._series.get(s.symbol):
                series[s.symbol] = self._series[s.symbol] = rec
        return {**now, "series": series} if series else now

    def _account_change(self, acct: Account, w: _Written) -> dict[str, Any]:
        if not acct.touched:
            return {}
        ex = acct.exchange
        out: dict[str, Any] = {}
        if ex.wallet != w.wallet:
            w.wallet = ex.wallet
            out["wallet"] = str(ex.wallet)
        modes = account_modes(acct)
        if modes != w.modes:
            w.modes = modes
            out["modes"] = modes
        changed_books = {}
        for sym, book in books(ex).items():
            fp = book_fingerprint(book)
            if w.books.get(sym) != fp:
                w.books[sym] = fp
                changed_books[sym] = book_record(book)
        if changed_books:
            out["books"] = changed_books
        dirty = acct.take_dirty()
        for o in open_orders(ex):  # a price update may change an open order without an event
            if w.open.get(o.order_id) != _fingerprint(acct, o.order_id):
                dirty.add(o.order_id)
        if dirty:
            orders = {}
            for oid in sorted(dirty):
                sim = order_by_id(ex, oid)
                if sim is None:
                    continue
                orders[str(oid)] = full_order_record(acct, sim)
                if sim.is_open:
                    w.open[oid] = _fingerprint(acct, oid)
                else:
                    w.open.pop(oid, None)
            out["orders"] = orders
        if len(ex.trades) != w.trades:
            out["trades"] = [_strings(t) for t in ex.trades[w.trades:]]
            w.trades = len(ex.trades)
        if len(ex.income) != w.income:
            out["income"] = [_strings(i) for i in ex.income[w.income:]]
            w.income = len(ex.income)
        ids = account_ids(acct)
        if ids != w.ids:
            w.ids = ids
            out["ids"] = ids
            if any(ids[name] + ID_BLOCK // 2 > w.reserved[name] for name in ids):
                w.reserved = {name: max(w.reserved[name], ids[name] + ID_BLOCK) for name in ids}
                out["reserved"] = dict(w.reserved)
        return out

    # ------------------------------------------------------------------------------------ fsync, close
    async def sync(self) -> None:
        """fsync what was appended, in a worker thread (the event loop keeps serving)."""
        fd = self.file.sync_fd()
        if fd is not None:
            await asyncio.get_running_loop().run_in_executor(None, _fsync_close, fd)

    def close(self) -> None:
        """Commit what is left, fsync, release the file. The hooks are removed."""
        for _, acct, _ in self._accounts:
            acct.on_change = None
        self.venue.on_commit = None
        try:
            if self.failed is None:
                self.commit()
        finally:
            self.file.close()


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _strings(item: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in item.items()}


def resume(venue: SandboxVenue, file: StateFile, loaded: Loaded, on_failure: Callable[[str], None]) -> DurableState:
    """Restore the venue from what ``file`` held (or warm it up when new), write a fresh snapshot, hook in."""
    path = file.path
    image: dict[str, Any] | None = None
    if loaded.legacy is not None:
        image = from_v1(loaded.legacy, venue, path)
        shutil.copyfile(path, path.with_name(path.name + ".v1"))  # the original, before it is rewritten
        log.info("sandbox: %s is a version-1 state file; migrated (original kept as %s.v1)", path, path.name)
    elif loaded.snapshot is not None:
        image = loaded.snapshot
        for record in loaded.records:
            apply(image, record)
    orphans: dict[str, Any] = {}
    seq = starts = 0
    if image is not None:
        try:
            orphans = restore(venue, image, path)
        except StateFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise StateFileError(f"{path}: state does not fit this sandbox or is damaged ({exc!r}); "
                                 "it was left as it is") from None
        seq, starts = int(image["seq"]), int(image.get("starts", 0)) + 1
    elif venue.config.warmup_klines:
        venue.play_klines(venue.config.warmup_klines)
    durable = DurableState(venue, file, orphans, on_failure)
    durable.begin(seq, starts)
    return durable
