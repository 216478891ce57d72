"""The run journal: every event of a live run, in bus order, in SQLite (WAL) under ``runs/<run-id>/``.

Every event gets its place in bus order (``seq``) when it is published. Commands (operator commands, intents, order,
cancel and cancel-all requests) are encoded at once and committed before anything leaves for the venue. The journal
is a gate, not only a subscriber: the execution port calls :meth:`Journal.confirm` with the exact command right before
it sends, and it returns only if that command's row was inserted and committed (one statement inserts, and one commit
covers, every command of the kline); a command whose insert or commit failed (disk full, read-only, corrupt, locked)
raises :class:`JournalUnavailable` and is not sent, and only that command: a batch the disk refuses is retried row by
row. So after a crash every order the venue may know of has its client id in the journal, whatever the disk did.
Other events (klines, fills, positions...) are kept in memory and written by :meth:`Journal.flush` (every half second,
in slices, and at close): off the hot path, and after a crash the venue is the source of truth for them anyway. Market
data (frozen, scalar-only events) is even encoded there; the rest is encoded as it comes.

Designed for resuming after a crash (:mod:`kinetic_empire.live.resume`): ``meta`` names the schema version, the run, the
venue and the account (a fingerprint of the key, never the key), the run tag from which client ids are
derived, and the initial balance; ``events`` replays the bus in order (``seq``), each event as JSON with
Decimals as strings, decodable back into the same frozen event objects (:func:`read_events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core import events as ev
from ..core.bus import EventBus
from ..core.errors import KineticError
from ..logs import redact
from .journal_codec import decode_as, payload, plain
from .journal_codec import encode as encode  # re-exported: the payload's fields as a dict
from .wal_checkpoint import CHECKPOINT_COMMITS, CHECKPOINT_ROWS, WalCheckpointer

log = logging.getLogger(__name__)

_Checkpointer = WalCheckpointer  # its name when it lived here

SCHEMA_VERSION = 1

EVENT_TYPES: tuple[type, ...] = (
    ev.KlineClosed, ev.MarkPriceUpdated, ev.OrderIntent, ev.OrderRequest, ev.CancelRequest, ev.CancelAllRequest,
    ev.OperatorCommand, ev.OrderAccepted, ev.OrderRejected, ev.OrderCanceled, ev.OrderExpired, ev.OrderFilled,
    ev.PositionChanged, ev.BalanceChanged, ev.FundingApplied, ev.Liquidated, ev.RiskDenied, ev.TradingStateChanged,
    ev.StrategyHalted, ev.Note, ev.Alert, ev.OrderOutcomeUnknown, ev.StrategyStateSaved, ev.ProtectionIntent,
    ev.TargetPositionIntent,
)
_BY_NAME = {cls.__name__: cls for cls in EVENT_TYPES}
_COMMANDS = (ev.OrderIntent, ev.OrderRequest, ev.CancelRequest, ev.CancelAllRequest, ev.OperatorCommand,
             ev.ProtectionIntent, ev.TargetPositionIntent)

# No index on ``kind`` nor on ``client_order_id``: every order's commit would update them (a B-tree page each, one
# more WAL frame written inside the commit on the order's path: 25-35 µs of a 45-110 µs commit, measured), while
# nothing reads by either in SQL: resume, reports and comparisons scan in ``seq`` order, which is how they read
# anyway. Journals made before keep theirs.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ts_event INTEGER NOT NULL,
    ts_init INTEGER NOT NULL,
    symbol TEXT,
    client_order_id TEXT,
    payload TEXT NOT NULL
);
"""


class JournalUnavailable(KineticError):
    """The journal cannot make a command durable: the command must not leave."""


def command_key(command: Any) -> tuple[Any, ...]:
    """What identifies one command between the journal and the execution port."""
    if isinstance(command, ev.OrderRequest):
        return ("OrderRequest", command.client_order_id)
    if isinstance(command, ev.CancelRequest):
        return ("CancelRequest", command.client_order_id, command.ts_event)
    if isinstance(command, ev.CancelAllRequest):
        return ("CancelAllRequest", command.symbol, command.strategy_id, command.cause, command.ts_event)
    return (type(command).__name__, getattr(command, "intent_id", None), command.ts_event)


_INSERT = ("INSERT INTO events (seq, kind, ts_event, ts_init, symbol, client_order_id, payload) "
           "VALUES (?,?,?,?,?,?,?)")
_LAZY = (ev.KlineClosed, ev.MarkPriceUpdated)  # frozen and scalar-only: encoded at the flush, off the hot path
_COMMAND, _NOW, _LAZY_ROW, _ROW = "command", "now", "lazy", "row"  # how record() writes an event of a type


def _how(event: Any) -> str:
    if isinstance(event, _COMMANDS):
        return _COMMAND
    if isinstance(event, ev.StrategyStateSaved):
        return _NOW
    return _LAZY_ROW if isinstance(event, _LAZY) else _ROW


_HOW: dict[type, str] = {}  # event type -> _how(event), decided once per type


def decode(kind: str, payload: dict[str, Any]) -> Any:
    return decode_as(_BY_NAME[kind], payload)


class Journal:
    """Append-only event log of one run."""

    def __init__(self, path: Path, *, batch: int = 256) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level="DEFERRED", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # No checkpoint inside a commit: SQLite's automatic one (every 1000 WAL pages) copies the WAL into the
        # database and fsyncs both, 10-30 ms inside whichever commit crosses the mark, usually an order's. The
        # checkpointer thread does it instead (see .wal_checkpoint); a commit's durability is unchanged.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        self._db.commit()
        self._checkpointer = WalCheckpointer(self.path)
        self._commits = 0  # commits and rows since the checkpointer was last woken
        self._checkpointed_at = 0
        self._pending = 0
        self._batch = batch
        self._deferred: list[tuple[Any, ...]] = []  # rows of events not written yet, encoded when they came
        row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
        self._seq = int(row[0] or 0)
        self.written = 0
        self.closed = False
        self._bus: EventBus | None = None
        self._inserted: set[tuple[Any, ...]] = set()  # command rows in the open transaction
        self._durable: set[tuple[Any, ...]] = set()  # command rows committed: these may leave
        self.failure = ""  # the latest write failure, one line ("" while every write succeeded)
        self._lost: dict[tuple[Any, ...], str] = {}  # commands whose insert failed, and why
        self._commands: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []  # (key, row) recorded, not inserted yet
        self._queued: dict[tuple[Any, ...], int] = {}  # their keys (-> seq)
        self.on_backlog: Callable[[], None] | None = None
        """Called when ``batch`` events wait to be written (the engine wakes its flush task); None: flush at once."""

    # ------------------------------------------------------------------------------ meta
    def set_meta(self, **values: Any) -> None:
        # every value as JSON, strings too: a raw string of digits (an account fingerprint such as
        # "402913377150") would read back as a number, and resume would see another account
        rows = [(k, redact(json.dumps(plain(v), sort_keys=True))) for k, v in values.items()]
        self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
        self._db.commit()

    def reopen(self, **values: Any) -> None:
        """A resumed run: drop the clean-stop marker (the run is going again) and note who writes now."""
        try:
            self._db.execute("DELETE FROM meta WHERE key IN ('ended_wall_ms', 'ended_market_ms', 'shutdown')")
        except sqlite3.Error as exc:
            raise JournalUnavailable(self._failed("meta not written", exc)) from None
        self.set_meta(**values)

    # ------------------------------------------------------------------------------ writing
    def attach(self, bus: EventBus) -> None:
        """Subscribe to every event type; call before the execution port subscribes."""
        self._bus = bus
        for cls in EVENT_TYPES:
            bus.subscribe(cls, self.record)

    def detach(self) -> None:
        if self._bus is not None:
            for cls in EVENT_TYPES:
                self._bus.unsubscribe(cls, self.record)
            self._bus = None

    def record(self, event: Any) -> None:
        self._seq += 1
        how = _HOW.get(type(event))
        if how is None:
            how = _HOW[type(event)] = _how(event)
        if how is _COMMAND:  # encoded now; inserted with the kline's other commands at the first confirm
            key = command_key(event)
            self._commands.append((key, self._row(self._seq, event)))
            self._queued[key] = self._seq
        elif how is _NOW:  # a strategy's memory: durable now, not at the next flush
            self._write_now(self._seq, event)
        else:
            # market data (scalars only) is encoded at the flush, everything else now: nothing of either is
            # written inside the kline-to-order path
            self._deferred.append((self._seq, event) if how is _LAZY_ROW else self._row(self._seq, event))
            if len(self._deferred) >= self._batch:
                if self.on_backlog is None:
                    self.flush()
                else:
                    self.on_backlog()

    def _insert_commands(self) -> None:
        """Insert the queued command rows (one statement in the common case); a command whose row cannot be
        inserted is lost (its confirm refuses it, saying why), and only that one."""
        queued = self._commands
        if not queued:
            return
        self._commands, self._queued = [], {}
        try:
            self._db.executemany(_INSERT, [row for _key, row in queued])
        except sqlite3.Error:
            self._insert_one_by_one(queued)
            return
        self.written += len(queued)
        self._pending += len(queued)
        self._inserted.update(key for key, _row in queued)

    def _insert_one_by_one(self, queued: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
        """After a failed batch insert: keep the rows that went in before the failure, retry the rest singly."""
        present: set[int] = set()
        if self._db.in_transaction:
            seqs = [row[0] for _key, row in queued]
            try:
                present = {seq for (seq,) in self._db.execute(
                    f"SELECT seq FROM events WHERE seq IN ({','.join('?' * len(seqs))})", seqs)}
            except sqlite3.Error:
                self._abort()
        else:  # SQLite rolled the whole transaction back: those rows are gone too
            self._abort()
        for key, row in queued:
            if row[0] in present:
                self.written += 1
                self._pending += 1
                self._inserted.add(key)
                continue
            try:
                self._db.execute(_INSERT, row)
            except sqlite3.Error as failure:  # not journaled: confirm() refuses it, so it never leaves
                if not self._db.in_transaction:
                    self._abort()
                    present = set()
                self._lost[key] = self._failed(f"{key[0]} {key[1]} not journaled", failure)
                continue
            self.written += 1
            self._pending += 1
            self._inserted.add(key)

    def _write_now(self, seq: int, event: Any) -> None:
        """Insert and commit one event (queued commands become durable with it); on failure it is kept for the
        next flush, as a deferred event would be."""
        self._insert_commands()
        try:
            self._insert(seq, event)
        except sqlite3.Error as exc:
            if not self._db.in_transaction:  # SQLite rolled the transaction back: its command rows are gone
                self._abort()
            self._deferred.append(self._row(seq, event))
            self._failed(f"{type(event).__name__} not written", exc)
            return
        try:
            self._commit()  # rolls back itself on failure
        except sqlite3.Error as exc:
            self._deferred.append(self._row(seq, event))
            self._failed(f"{type(event).__name__} not written", exc)

    @staticmethod
    def _row(seq: int, event: Any) -> tuple[Any, ...]:
        return (seq, type(event).__name__, event.ts_event, event.ts_init, getattr(event, "symbol", None),
                getattr(event, "client_order_id", None), redact(payload(event)))

    def _insert(self, seq: int, event: Any) -> None:
        self._db.execute(_INSERT, self._row(seq, event))
        self.written += 1
        self._pending += 1

    def _commit(self, counts: bool = True) -> None:
        """Commit, or roll back and raise: rows of a failed commit are gone, so none of them may leave."""
        try:
            self._db.commit()
        except sqlite3.Error:
            self._abort()
            raise
        self._durable |= self._inserted
        self._inserted.clear()
        self._pending = 0
        self._commits += counts  # toward the checkpoint: a backlog's slices count as its one flush

    def _abort(self) -> None:
        """Roll the open transaction back: its command rows are not in the journal, so none of them may leave."""
        self._inserted.clear()
        self._pending = 0
        with contextlib.suppress(sqlite3.Error):
            self._db.rollback()

    def _failed(self, what: str, exc: BaseException) -> str:
        """Remember why a write failed (one line); the engine says it once, when it pauses entries."""
        self.failure = f"JOURNAL_UNAVAILABLE {what}: {exc}"
        log.debug("journal %s: %s (%s)", self.path, self.failure, type(exc).__name__)
        return self.failure

    def confirm(self, command: Any) -> None:
        """Return only if ``command`` is durable (inserting and committing it if needed); :class:`JournalUnavailable`
        if not.

        The execution port calls this right before every send: a command whose row was never inserted
        (the insert failed) or whose commit fails is refused, so nothing leaves unjournaled. The commands
        recorded since the last commit (a kline's intent and its orders) are inserted and committed together.
        """
        key = command_key(command)
        if key in self._durable:
            return
        if key in self._queued:
            self._insert_commands()
        if key not in self._inserted:
            raise JournalUnavailable(self._lost.pop(key, "") or f"JOURNAL_UNAVAILABLE {key[0]} {key[1]} is not in the "
                                     f"journal ({self.failure or 'never recorded'})")
        try:
            self._commit()
        except sqlite3.Error as exc:
            raise JournalUnavailable(self._failed(f"{key[0]} {key[1]} not committed", exc)) from None

    @property
    def backlog(self) -> int:
        """Events recorded and not written yet."""
        return len(self._deferred) + len(self._commands)

    def flush(self, max_rows: int | None = None) -> bool:
        """Write the queued commands and (up to ``max_rows`` of) the deferred events, and commit; False (kept for
        the next flush) if the disk refuses. With ``max_rows`` the caller flushes a long backlog in slices,
        letting the event loop run between them."""
        self._insert_commands()
        if max_rows is None or max_rows >= len(self._deferred):
            deferred, self._deferred = self._deferred, []
        else:
            deferred, self._deferred = self._deferred[:max_rows], self._deferred[max_rows:]
        rows = [self._row(*item) if len(item) == 2 else item for item in deferred]
        try:
            if rows:
                self._db.executemany(_INSERT, rows)
                self.written += len(rows)
                self._pending += len(rows)
            if self._pending:
                self._commit(counts=not self._deferred)
        except sqlite3.Error as exc:
            self._abort()
            self._deferred = rows + self._deferred
            self._failed(f"{len(rows)} events not flushed", exc)
            return False
        if self._commits >= CHECKPOINT_COMMITS or self.written - self._checkpointed_at >= CHECKPOINT_ROWS:
            self._commits, self._checkpointed_at = 0, self.written
            self._checkpointer.request()
        return True

    async def flush_in_slices(self, rows: int) -> bool:
        """The whole backlog, ``rows`` at a time, the event loop running between slices (a kline arriving meanwhile
        waits for one slice, not for all of it); False if the disk refused (the rest is kept)."""
        while not self.closed:
            if not self.flush(rows):
                return False
            if not self.backlog:
                break
            await asyncio.sleep(0)
        return True

    def touch(self) -> None:
        """Read the newest row (nothing written, no lock a writer needs): runs SQLite's code and pages ahead of a
        kline's commit, so the commit finds them in the caches (:mod:`.close_poll`'s rehearsal)."""
        if not self._db.in_transaction:
            self._db.execute("SELECT seq, payload FROM events ORDER BY seq DESC LIMIT 1").fetchone()

    def close(self) -> None:
        if self.closed:
            return
        self.detach()
        self.flush()
        self._checkpointer.close()
        with contextlib.suppress(sqlite3.Error):  # a failed write is already logged; the WAL stays valid
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self.closed = True


# ---------------------------------------------------------------------------------- reading


def read_meta(path: Path) -> dict[str, Any]:
    """The run's meta rows; JournalCorrupt naming the file if it is not a readable journal."""
    with _reading(path) as db:
        out: dict[str, Any] = {}
        for key, value in db.execute("SELECT key, value FROM meta"):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        return out


def read_events(path: Path, kinds: tuple[str, ...] | None = None) -> Iterator[Any]:
    """The journal's events, decoded, in bus order; JournalCorrupt names the file and the event that is not."""
    with _reading(path) as db:
        sql = "SELECT seq, kind, payload FROM events"
        args: tuple[Any, ...] = ()
        if kinds:
            sql += f" WHERE kind IN ({','.join('?' * len(kinds))})"
            args = kinds
        for seq, kind, payload in db.execute(sql + " ORDER BY seq", args):
            try:
                event = decode(kind, json.loads(payload))
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                what = f"unknown event kind {kind!r}" if kind not in _BY_NAME else f"unreadable {kind} payload"
                raise JournalCorrupt(f"journal {path}, event {seq}: {what} ({type(exc).__name__}: "
                                     f"{str(exc)[:120]})") from exc
            yield event


class JournalCorrupt(KineticError):
    """A journal file that cannot be read back: truncated, overwritten, or an event that does not decode."""


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    path = Path(path)
    if not path.is_file():
        raise JournalCorrupt(f"journal {path}: no such file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalCorrupt(f"journal {path}: cannot open ({exc})") from exc
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise JournalCorrupt(f"journal {path}: not a readable run journal ({exc}); it may be truncated or "
                             "overwritten") from exc
    finally:
        db.close()
