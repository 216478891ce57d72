"""The ``--state`` file on disk: a snapshot line, then one appended line per committed change.

Format (version 2): every line is ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. Line 1 is a snapshot
of the whole sandbox state; every further line is one change record (``{"seq": n, ...}``, consecutive
numbers after the snapshot's ``seq``). A record is appended with one ``write()`` before the answer or
event that reveals it leaves the process, so a SIGKILL loses nothing acknowledged. Compaction writes a
new snapshot to a temporary file, fsyncs it, and renames it over the file (atomic on POSIX).

Reading: a last line without its newline is a write cut short by a crash (never acknowledged): it is
dropped and kept beside the file as ``<file>.torn``. Any other bad line (checksum, JSON, sequence) means
the file is corrupt: :class:`StateFileError`, and the file is left exactly as it is. A version-1 file
(one JSON object, the periodic snapshot of earlier versions) is returned as ``legacy`` for migration.

A second process on the same file is refused: ``<file>.lock`` holds an exclusive ``flock`` for the
life of the process (the OS releases it when the process dies, SIGKILL included).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERSION = 2


class StateFileError(ValueError):
    """The state file cannot be used as it is; the message names the file and says why."""


class StateWriteError(OSError):
    """A change could not be written: the sandbox stops rather than acknowledge it."""


@dataclass(slots=True)
class Loaded:
    """What a state file holds: nothing (new file), a version-1 document, or a snapshot and records."""

    snapshot: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    legacy: dict[str, Any] | None = None
    torn_bytes: int = 0


try:  # orjson is several times faster (the gateway uses it too); the standard library is the fallback
    import orjson

    def _dumps(doc: dict[str, Any]) -> bytes:
        return orjson.dumps(doc)
except ImportError:  # pragma: no cover
    def _dumps(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()


def encode(doc: dict[str, Any]) -> bytes:
    """One line: checksum, space, compact JSON, newline."""
    payload = _dumps(doc)
    return b"%08x " % zlib.crc32(payload) + payload + b"\n"


def _decode(line: bytes) -> dict[str, Any]:
    crc, _, payload = line.partition(b" ")
    if len(crc) != 8 or int(crc, 16) != zlib.crc32(payload):
        raise ValueError("checksum mismatch")
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def parse(path: Path, data: bytes) -> Loaded:
    """Parse a state file's bytes; :class:`StateFileError` (naming ``path``) if they are not usable."""
    if not data.strip():
        return Loaded()
    if data.lstrip()[:1] == b"{":
        try:
            legacy = json.loads(data)
        except ValueError as exc:
            raise StateFileError(f"{path}: not a readable state file ({exc}); it was left as it is") from None
        if not isinstance(legacy, dict) or legacy.get("version") != 1:
            version = legacy.get("version") if isinstance(legacy, dict) else None
            raise StateFileError(f"{path}: unsupported state file version {version!r}; it was left as it is")
        return Loaded(legacy=legacy)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, as every complete write does
    docs: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        try:
            docs.append(_decode(line))
        except ValueError as exc:
            raise StateFileError(f"{path}: line {n} is corrupt ({exc}); the file was left as it is") from None
    if not docs:
        raise StateFileError(f"{path}: no complete snapshot line; the file was left as it is")
    snapshot, records = docs[0], docs[1:]
    if snapshot.get("version") != VERSION:
        raise StateFileError(f"{path}: unsupported state file version {snapshot.get('version')!r}; "
                             "it was left as it is")
    seq = snapshot.get("seq")
    for n, rec in enumerate(records, 2):
        if not isinstance(seq, int) or rec.get("seq") != seq + 1:
            raise StateFileError(f"{path}: line {n} is out of sequence (seq {rec.get('seq')!r} after {seq!r}); "
                                 "the file was left as it is")
        seq = rec["seq"]
    return Loaded(snapshot=snapshot, records=records, torn_bytes=len(tail))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class StateFile:
    """The locked state file: read it, replace it with a snapshot, append records, fsync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self.snapshot_bytes = 0
        self.log_bytes = 0  # appended since the snapshot
        self.unsynced = False

    # ------------------------------------------------------------------------------------ open
    def open(self) -> Loaded:
        """Take the lock, then read and check the file. Nothing is written."""
        self._lock()
        try:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return Loaded()
            except IsADirectoryError:
                raise StateFileError(f"{self.path}: is a folder, not a state file") from None
            loaded = parse(self.path, data)
            if loaded.torn_bytes:
                torn = self.path.with_name(self.path.name + ".torn")
                torn.write_bytes(data[len(data) - loaded.torn_bytes:])
                log.warning("sandbox: %s ended with %d bytes of an unfinished write (a crash before it was "
                            "acknowledged); dropped, kept in %s", self.path, loaded.torn_bytes, torn)
            return loaded
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateFileError(f"{self.path}: in use by another sandbox (pid {holder}); "
                                     "one process per state file") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    # ------------------------------------------------------------------------------------ write
    def write_snapshot(self, doc: dict[str, Any]) -> None:
        """Replace the file with ``doc`` as its only line (temporary file, fsync, rename), then append there."""
        line = encode(doc)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.snapshot_bytes, self.log_bytes, self.unsynced = len(line), 0, False

    def append(self, record: dict[str, Any]) -> None:
        """One record, one ``write()``: when this returns the kernel has the bytes (a SIGKILL keeps them)."""
        assert self._fd is not None, "write_snapshot first"
        line = encode(record)
        _write_all(self._fd, line)
        self.log_bytes += len(line)
        self.unsynced = True

    def sync_fd(self) -> int | None:
        """A duplicate of the append descriptor for an fsync in another thread (the caller closes it)."""
        if self._fd is None or not self.unsynced:
            return None
        self.unsynced = False
        return os.dup(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if self.unsynced:
                    os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
