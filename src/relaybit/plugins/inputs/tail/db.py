"""tail's offset database: SQLite, Fluent Bit's ``in_tail_files`` table.

One row per file: ``name``, ``offset`` (bytes consumed and emitted), ``inode``,
``created``, ``rotated``.  Offsets are written only after the engine stored the
records (``emit`` returned) and committed in one transaction per batch, so a
``kill -9`` never skips a line (it may repeat the last uncommitted batch).
The table is Fluent Bit's, so an existing Fluent Bit DB file is reused as is.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file's saved position."""

    id: int
    name: str
    offset: int
    inode: int


class OffsetDB:
    """The SQLite offsets file of one tail instance (not thread-safe: use from the loop)."""

    def __init__(
        self,
        path: str | Path,
        *,
        sync: str = "normal",
        locking: bool = False,
        journal_mode: str = "WAL",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None)
        self._conn.execute(f"PRAGMA journal_mode={journal_mode};")
        self._conn.execute(f"PRAGMA synchronous={sync.upper()};")
        if locking:
            self._conn.execute("PRAGMA locking_mode=EXCLUSIVE;")
        self._conn.execute(_CREATE)
        self._pending: dict[int, int] = {}

    def get(self, inode: int) -> FileRow | None:
        """The newest row for ``inode``, or None."""
        row = self._conn.execute(
            "SELECT id, name, offset, inode FROM in_tail_files WHERE inode=? ORDER BY id DESC",
            (inode,),
        ).fetchone()
        if row is None:
            return None
        return FileRow(int(row[0]), str(row[1]), int(row[2] or 0), int(row[3]))

    def insert(self, name: str, offset: int, inode: int) -> int:
        """A new row; returns its id."""
        cur = self._conn.execute(
            "INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?, ?, ?, ?)",
            (name, offset, inode, int(time.time())),
        )
        return int(cur.lastrowid or 0)

    def set_offset(self, row_id: int, offset: int) -> None:
        """Remember ``offset``; written by the next :meth:`commit`."""
        self._pending[row_id] = offset

    def commit(self) -> None:
        """Write every remembered offset in one transaction."""
        if not self._pending:
            return
        items = [(offset, row_id) for row_id, offset in self._pending.items()]
        self._pending.clear()
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("UPDATE in_tail_files SET offset=? WHERE id=?", items)

    def rotate(self, row_id: int, name: str) -> None:
        """Mark a file as rotated (renamed to ``name``)."""
        self._conn.execute("UPDATE in_tail_files SET name=?, rotated=1 WHERE id=?", (name, row_id))

    def delete(self, row_id: int) -> None:
        """Forget a file no longer watched (a rotated file read to its end)."""
        self._pending.pop(row_id, None)
        self._conn.execute("DELETE FROM in_tail_files WHERE id=?", (row_id,))

    def rows(self) -> list[FileRow]:
        """Every row (for status and tests)."""
        return [
            FileRow(int(r[0]), str(r[1]), int(r[2] or 0), int(r[3]))
            for r in self._conn.execute("SELECT id, name, offset, inode FROM in_tail_files")
        ]

    def close(self) -> None:
        self.commit()
        self._conn.close()

    def __repr__(self) -> str:
        return f"<OffsetDB {self.path}>"
