"""tail's offset database: SQLite, Fluent Bit's ``in_tail_files`` table.

One row per file: ``name``, ``offset`` (bytes consumed and emitted), ``inode``,
``created``, ``rotated``.  Offsets are written only after the engine stored the
records (``emit`` returned) and committed in one transaction per batch, so a
``kill -9`` never skips a line (it may repeat the last uncommitted batch).
The table is Fluent Bit's, so an existing Fluent Bit DB file is reused as is.

The database is used from the event loop, so it never waits long for a lock:
its busy timeout is :data:`BUSY_TIMEOUT` (Fluent Bit's is none at all).  Writes
(new rows, offsets, rotations, deletions) are queued in order and written by
:meth:`OffsetDB.commit` in one transaction; when the file is locked (another
process writing it, a ``db.locking`` agent holding it) they stay queued, offsets
coalesced, and are written by a commit after :data:`RETRY_AFTER`: the saved
offset lags, it is never lost.  Rows are known by handles: an existing row's id,
or a negative number for a row not written yet.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CREATE = (
    "CREATE TABLE IF NOT EXISTS in_tail_files ("
    "  id      INTEGER PRIMARY KEY,"
    "  name    TEXT NOT NULL,"
    "  offset  INTEGER,"
    "  inode   INTEGER,"
    "  created INTEGER,"
    "  rotated INTEGER DEFAULT 0"
    ");"
)

SYNC_MODES = ("extra", "full", "normal", "off")

#: seconds a statement waits for another connection's lock before it gives up
BUSY_TIMEOUT = 0.02
#: seconds before writes that found the file locked are tried again
RETRY_AFTER = 0.5
#: seconds opening (schema, pragmas) and the last write at close wait for a lock
OPEN_TIMEOUT = 5.0


class DBBusy(Exception):
    """The DB file is locked by another connection: try again later."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file's saved position."""

    id: int
    name: str
    offset: int
    inode: int


class OffsetDB:
    """The SQLite offsets file of one tail instance (used from one thread at a time)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sync: str = "normal",
        locking: bool = False,
        journal_mode: str = "WAL",
        busy_timeout: float = BUSY_TIMEOUT,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log = logger or logging.getLogger("relaybit.tail.db")
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=OPEN_TIMEOUT, check_same_thread=False
        )
        try:
            self._conn.execute(f"PRAGMA journal_mode={journal_mode};")
            self._conn.execute(f"PRAGMA synchronous={sync.upper()};")
            if locking:
                self._conn.execute("PRAGMA locking_mode=EXCLUSIVE;")
            self._conn.execute(_CREATE)
        except BaseException:
            self._conn.close()
            raise
        self._busy_ms = max(int(busy_timeout * 1000), 0)
        self._conn.execute(f"PRAGMA busy_timeout={self._busy_ms};")
        #: writes not done yet, in order: ("insert", handle, name, offset, inode, created),
        #: ("rotate", handle, name), ("delete", handle)
        self._queue: list[tuple[Any, ...]] = []
        #: offsets to write, by handle (the latest wins)
        self._pending: dict[int, int] = {}
        #: handles of rows inserted since: negative handle -> row id
        self._ids: dict[int, int] = {}
        self._next_handle = -1
        self._retry_at = 0.0
        self.busy_since: float | None = None  #: monotonic time writes first found it locked
        self.failed_writes = 0  #: commits that found the file locked

    # --- reads ---------------------------------------------------------------------

    def get(self, inode: int) -> FileRow | None:
        """The newest row for ``inode``, or None; :class:`DBBusy` while queued writes
        cannot be written (the row read would not be the current one) or the file
        cannot be read."""
        if (self._queue or self._pending) and not self.commit():
            raise DBBusy(str(self.path))
        if time.monotonic() < self._retry_at:  # found locked a moment ago
            raise DBBusy(str(self.path))
        try:
            row = self._conn.execute(
                "SELECT id, name, offset, inode FROM in_tail_files WHERE inode=? ORDER BY id DESC",
                (inode,),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                self._locked(time.monotonic())
                raise DBBusy(str(self.path)) from exc
            raise
        if row is None:
            return None
        return FileRow(int(row[0]), str(row[1]), int(row[2] or 0), int(row[3]))

    def rows(self) -> list[FileRow]:
        """Every row as written (for status and tests)."""
        return [
            FileRow(int(r[0]), str(r[1]), int(r[2] or 0), int(r[3]))
            for r in self._conn.execute("SELECT id, name, offset, inode FROM in_tail_files")
        ]

    # --- writes (queued) --------------------------------------------------------------

    @property
    def unwritten(self) -> bool:
        """True while changes wait for a :meth:`commit` (the file was locked)."""
        return bool(self._queue or self._pending)

    def insert(self, name: str, offset: int, inode: int) -> int:
        """A new row (written by the next :meth:`commit`); returns its handle."""
        handle = self._next_handle
        self._next_handle -= 1
        self._queue.append(("insert", handle, name, offset, inode, int(time.time())))
        return handle

    def set_offset(self, handle: int, offset: int) -> None:
        """Remember ``offset``; written by the next :meth:`commit`."""
        self._pending[handle] = offset

    def rotate(self, handle: int, name: str) -> None:
        """Mark a file as rotated (renamed to ``name``)."""
        self._queue.append(("rotate", handle, name))

    def delete(self, handle: int) -> None:
        """Forget a file no longer watched (a rotated file read to its end)."""
        self._pending.pop(handle, None)
        self._queue.append(("delete", handle))

    def commit(self, *, force: bool = False) -> bool:
        """Write every queued change and remembered offset in one transaction; False when
        the file is locked (they stay queued; tried again after RETRY_AFTER, or at once
        with ``force``)."""
        if not self._queue and not self._pending:
            return True
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        ids: dict[int, int] = {}
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            self._locked(now)
            return False
        try:
            deleted = self._write(ids)
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                self._locked(now)
                return False
            raise
        self._ids.update(ids)
        for handle in deleted:
            self._ids.pop(handle, None)
        self._queue.clear()
        self._pending.clear()
        if self.busy_since is not None:
            self._log.info(
                "tail db %s: offsets written again (it was locked for %.1f s)",
                self.path,
                now - self.busy_since,
            )
            self.busy_since = None
        return True

    def _write(self, ids: dict[int, int]) -> set[int]:
        """The queued writes (in a transaction); the handles of the rows deleted."""

        def row_id(handle: int) -> int | None:
            return handle if handle > 0 else ids.get(handle, self._ids.get(handle))

        deleted: set[int] = set()
        for op in self._queue:
            kind, handle = op[0], op[1]
            if kind == "insert":
                cur = self._conn.execute(
                    "INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?, ?, ?, ?)",
                    op[2:],
                )
                ids[handle] = int(cur.lastrowid or 0)
                continue
            rid = row_id(handle)
            if rid is None:
                continue
            if kind == "rotate":
                self._conn.execute(
                    "UPDATE in_tail_files SET name=?, rotated=1 WHERE id=?", (op[2], rid)
                )
            else:
                self._conn.execute("DELETE FROM in_tail_files WHERE id=?", (rid,))
                deleted.add(handle)
        items = []
        for handle, offset in self._pending.items():
            rid = row_id(handle)
            if rid is not None and handle not in deleted:
                items.append((offset, rid))
        if items:
            self._conn.executemany("UPDATE in_tail_files SET offset=? WHERE id=?", items)
        return deleted

    def _locked(self, now: float) -> None:
        self._retry_at = now + RETRY_AFTER
        self.failed_writes += 1
        if self.busy_since is None:
            self.busy_since = now
            self._log.warning(
                "tail db %s is locked by another connection: offsets are kept and written"
                " once it is free (reading goes on)",
                self.path,
            )

    def close(self, *, wait: float = OPEN_TIMEOUT) -> bool:
        """Write what is queued (waiting up to ``wait`` seconds for a lock), then close;
        False when it could not be written (those lines are read again next time)."""
        done = False
        try:
            self._conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)};")
            done = self.commit(force=True)
            if not done:
                self._log.warning(
                    "tail db %s still locked: the last offsets were not saved"
                    " (their lines will be read again)",
                    self.path,
                )
        finally:
            self._conn.close()
        return done

    def __repr__(self) -> str:
        return f"<OffsetDB {self.path}>"
