"""tail's offset database: SQLite, Fluent Bit's ``in_tail_files`` table.

One row per file: ``name``, ``offset`` (bytes consumed and emitted), ``inode``,
``created``, ``rotated``.  Offsets are written only after the engine stored the
records (``emit`` returned) and committed in one transaction per batch, so a
``kill -9`` never skips a line (it may repeat the last uncommitted batch).
The table is Fluent Bit's, so an existing Fluent Bit DB file is reused as is.

The tail runs on the event loop, which must never wait for the file: the rows
are read once, at open, and kept in memory (reads never touch SQLite again);
writes (new rows, offsets, rotations, deletions) are queued in order and
written by :meth:`OffsetDB.commit` in one transaction, on a thread of their own
with ``background`` (the tail's case): a slow disk or a lock held by another
process delays the write, never the loop.  A statement waits
:data:`BUSY_TIMEOUT` for a lock (Fluent Bit: not at all); when the file is still
locked the changes stay queued, offsets coalesced, and a commit after
:data:`RETRY_AFTER` tries again: the saved offset lags, it is never lost.  Rows
are known by handles: an existing row's id, or a negative number for a row
inserted by this instance.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
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
BUSY_TIMEOUT = 0.1
#: seconds before writes that found the file locked are tried again
RETRY_AFTER = 0.5
#: seconds opening (schema, pragmas, rows) and the last write at close wait for a lock
OPEN_TIMEOUT = 5.0

#: ("insert", handle, name, offset, inode, created) | ("rotate", handle, name) | ("delete", handle)
Op = tuple[Any, ...]
#: what a write did: new rows' ids by handle, handles deleted; None: the file was locked
Written = tuple[dict[int, int], set[int]] | None


def _busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file's saved position (``id``: its handle, see the module's doc)."""

    id: int
    name: str
    offset: int
    inode: int


class OffsetDB:
    """The SQLite offsets file of one tail instance (its methods are called from one
    thread, the loop's; with ``background`` the writes run on a thread of their own)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sync: str = "normal",
        locking: bool = False,
        journal_mode: str = "WAL",
        busy_timeout: float = BUSY_TIMEOUT,
        background: bool = False,
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
            #: the rows, by handle, oldest first (reads are served from here)
            self._rows: dict[int, FileRow] = {}
            for row in self._read_rows():
                self._rows[row.id] = row
        except BaseException:
            self._conn.close()
            raise
        #: handles by inode, oldest first
        self._by_inode: dict[int, list[int]] = {}
        for row in self._rows.values():
            self._by_inode.setdefault(row.inode, []).append(row.id)
        self._conn.execute(f"PRAGMA busy_timeout={max(int(busy_timeout * 1000), 0)};")
        self._queue: list[Op] = []  #: writes not done yet, in order
        self._pending: dict[int, int] = {}  #: offsets to write by handle (the latest wins)
        self._ids: dict[int, int] = {}  #: rows inserted: negative handle -> row id
        self._next_handle = -1
        self._retry_at = 0.0
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tail-db")
            if background
            else None
        )
        #: the write running on the pool: its future, its ops and offsets, its start
        self._inflight: tuple[concurrent.futures.Future[Written], list[Op], dict[int, int]] | None
        self._inflight = None
        self.busy_since: float | None = None  #: monotonic time writes first found it locked
        self.failed_writes = 0  #: writes that found the file locked

    # --- reads (from memory) ------------------------------------------------------

    def get(self, inode: int) -> FileRow | None:
        """The newest row for ``inode``, or None."""
        handles = self._by_inode.get(inode)
        return self._rows[handles[-1]] if handles else None

    def rows(self) -> list[FileRow]:
        """Every row as written in the file (for status and tests; ids are row ids)."""
        return self._read_rows()

    def _read_rows(self) -> list[FileRow]:
        return [
            FileRow(int(r[0]), str(r[1]), int(r[2] or 0), int(r[3]))
            for r in self._conn.execute(
                "SELECT id, name, offset, inode FROM in_tail_files ORDER BY id"
            )
        ]

    # --- writes (queued) --------------------------------------------------------------

    @property
    def unwritten(self) -> bool:
        """True while changes wait for a :meth:`commit` (or a write is under way)."""
        return bool(self._queue or self._pending or self._inflight)

    def insert(self, name: str, offset: int, inode: int) -> int:
        """A new row (written by the next :meth:`commit`); returns its handle."""
        handle = self._next_handle
        self._next_handle -= 1
        self._queue.append(("insert", handle, name, offset, inode, int(time.time())))
        self._rows[handle] = FileRow(handle, name, offset, inode)
        self._by_inode.setdefault(inode, []).append(handle)
        return handle

    def set_offset(self, handle: int, offset: int) -> None:
        """Remember ``offset``; written by the next :meth:`commit`."""
        row = self._rows.get(handle)
        if row is None:
            return
        self._rows[handle] = FileRow(handle, row.name, offset, row.inode)
        self._pending[handle] = offset

    def rotate(self, handle: int, name: str) -> None:
        """Mark a file as rotated (renamed to ``name``)."""
        row = self._rows.get(handle)
        if row is None:
            return
        self._rows[handle] = FileRow(handle, name, row.offset, row.inode)
        self._queue.append(("rotate", handle, name))

    def delete(self, handle: int) -> None:
        """Forget a file no longer watched (a rotated file read to its end)."""
        row = self._rows.pop(handle, None)
        if row is None:
            return
        handles = self._by_inode.get(row.inode, [])
        with contextlib.suppress(ValueError):
            handles.remove(handle)
        if not handles:
            self._by_inode.pop(row.inode, None)
        self._pending.pop(handle, None)
        self._queue.append(("delete", handle))

    def commit(self, *, force: bool = False) -> None:
        """Write every queued change and remembered offset in one transaction (on the
        pool with ``background``: one write at a time, the next takes what came
        meanwhile).  Locked: kept, tried again after RETRY_AFTER (``force``: now)."""
        self._collect()
        if self._inflight is not None or not (self._queue or self._pending):
            return
        now = time.monotonic()
        if not force and now < self._retry_at:
            return
        ops, offsets = self._queue, self._pending
        self._queue, self._pending = [], {}
        ids = dict(self._ids)
        if self._pool is None:
            try:
                written = self._transaction(ops, offsets, ids)
            except BaseException:
                self._requeue(ops, offsets)
                raise
            self._settle(ops, offsets, written)
        else:
            future = self._pool.submit(self._transaction, ops, offsets, ids)
            self._inflight = (future, ops, offsets)

    def _collect(self, *, wait: bool = False) -> None:
        """Take the result of the write on the pool, once it is done (``wait``: wait)."""
        if self._inflight is None:
            return
        future, ops, offsets = self._inflight
        if not wait and not future.done():
            return
        self._inflight = None
        try:
            written = future.result()
        except BaseException:
            self._requeue(ops, offsets)
            raise
        self._settle(ops, offsets, written)

    def _transaction(self, ops: list[Op], offsets: dict[int, int], ids: dict[int, int]) -> Written:
        """Write ``ops`` then ``offsets`` in one transaction (a pool thread, or the caller's)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise
        new: dict[int, int] = {}
        deleted: set[int] = set()

        def row_id(handle: int) -> int | None:
            return handle if handle > 0 else new.get(handle, ids.get(handle))

        try:
            for op in ops:
                kind, handle = op[0], op[1]
                if kind == "insert":
                    cur = conn.execute(
                        "INSERT INTO in_tail_files (name, offset, inode, created)"
                        " VALUES (?, ?, ?, ?)",
                        op[2:],
                    )
                    new[handle] = int(cur.lastrowid or 0)
                    continue
                rid = row_id(handle)
                if rid is None:
                    continue
                if kind == "rotate":
                    conn.execute(
                        "UPDATE in_tail_files SET name=?, rotated=1 WHERE id=?", (op[2], rid)
                    )
                else:
                    conn.execute("DELETE FROM in_tail_files WHERE id=?", (rid,))
                    deleted.add(handle)
            items = [
                (offset, rid)
                for handle, offset in offsets.items()
                if handle not in deleted and (rid := row_id(handle)) is not None
            ]
            if items:
                conn.executemany("UPDATE in_tail_files SET offset=? WHERE id=?", items)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _busy(exc):
                return None
            raise
        return new, deleted

    def _requeue(self, ops: list[Op], offsets: dict[int, int]) -> None:
        """Changes not written go back before the ones queued since (newer offsets win)."""
        self._queue = ops + self._queue
        merged = dict(offsets)
        merged.update(self._pending)
        self._pending = {h: o for h, o in merged.items() if h in self._rows}

    def _settle(self, ops: list[Op], offsets: dict[int, int], written: Written) -> None:
        now = time.monotonic()
        if written is None:
            self._requeue(ops, offsets)
            self._retry_at = now + RETRY_AFTER
            self.failed_writes += 1
            if self.busy_since is None:
                self.busy_since = now
                self._log.warning(
                    "tail db %s is locked by another connection: offsets are kept and"
                    " written once it is free (reading goes on)",
                    self.path,
                )
            return
        new, deleted = written
        self._ids.update(new)
        for handle in deleted:
            self._ids.pop(handle, None)
        if self.busy_since is not None:
            self._log.info(
                "tail db %s: offsets written again (it was locked for %.1f s)",
                self.path,
                now - self.busy_since,
            )
            self.busy_since = None

    def close(self, *, wait: float = OPEN_TIMEOUT) -> bool:
        """Write what is queued (waiting up to ``wait`` seconds for a lock), then close;
        False when it could not be written (those lines are read again next time).
        It waits: call it off the event loop."""
        try:
            with contextlib.suppress(Exception):
                self._collect(wait=True)
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            self._conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)};")
            self.commit(force=True)
            done = not (self._queue or self._pending)
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
