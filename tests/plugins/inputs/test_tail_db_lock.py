"""tail's ``db`` locked by another connection (another process; a slow disk holds
the writes the same way): the agent keeps reading and delivering, its event loop
never waits more than a moment, and the offsets are saved once the lock is
released (never lost)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from input_helpers import BatchCollector, make_tail, until


def write(path: Path, lines: list[str]) -> None:
    with path.open("a") as fh:
        fh.write("".join(f"{ln}\n" for ln in lines))


def offsets(db: Path) -> dict[str, int]:
    """The saved offsets by file name, read through a connection of its own."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        return {str(n): int(o) for n, o in conn.execute("SELECT name, offset FROM in_tail_files")}
    finally:
        conn.close()


class LoopLag:
    """The longest the event loop went without running this task's 10 ms ticks."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.worst = max(self.worst, now - last - 0.01)
            last = now

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
async def locker() -> AsyncIterator[list[sqlite3.Connection]]:
    """Connections a test opened to hold a lock; rolled back and closed after it."""
    conns: list[sqlite3.Connection] = []
    yield conns
    for conn in conns:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def lock(db: Path, conns: list[sqlite3.Connection], how: str = "IMMEDIATE") -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    conn.execute(f"BEGIN {how}")
    conn.execute("UPDATE in_tail_files SET created=created")  # holds the write lock
    conns.append(conn)
    return conn


async def test_a_locked_db_does_not_stop_reading_and_the_offset_is_saved_after(
    running: list[Any], tmp_path: Path, locker: list[sqlite3.Connection]
) -> None:
    log = tmp_path / "app.log"
    db = tmp_path / "tail.db"
    write(log, [f"a {i}" for i in range(10)])
    got = BatchCollector()
    plugin = make_tail(got, tag="t", path=str(log), db=str(db), read_from_head="on")
    await plugin.start()
    running.append(plugin)
    await until(lambda: len(got.records()) == 10)
    await until(lambda: offsets(db) == {str(log): log.stat().st_size})
    before = log.stat().st_size
    conn = lock(db, locker)
    with LoopLag() as lag:
        for n in range(5):  # several batches, each saved (tried) after it is emitted
            write(log, [f"b {n} {i}" for i in range(40)])
            await until(lambda n=n: len(got.records()) == 10 + 40 * (n + 1))
        assert offsets(db) == {str(log): before}  # not written yet: the lock is held
        await until(lambda: plugin.status()["db"]["locked"])
        conn.execute("ROLLBACK")
        await until(lambda: offsets(db) == {str(log): log.stat().st_size})
    assert lag.worst < 1.0  # SQLite's default busy timeout held the loop 5 s per write
    await until(lambda: not plugin.status()["db"]["locked"])
    assert plugin.status()["db"]["locked_writes"] >= 1
    assert [r["log"] for r in got.records()][10:12] == ["b 0 0", "b 0 1"]


async def test_a_file_found_while_the_db_cannot_even_be_read_is_followed_at_once(
    running: list[Any], tmp_path: Path, locker: list[sqlite3.Connection]
) -> None:
    """Rollback journal, an exclusive lock: not even the rows can be read. The rows
    are in memory: a new file is read from its head at once, its row is written
    with its offset once the lock is released."""
    old = tmp_path / "old.log"
    db = tmp_path / "tail.db"
    write(old, ["old 0"])
    got = BatchCollector()
    plugin = make_tail(
        got, tag="t", path=str(tmp_path / "*.log"), db=str(db), read_from_head="on",
        db__journal_mode="DELETE",
    )  # fmt: skip
    await plugin.start()
    running.append(plugin)
    await until(lambda: len(got.records()) == 1)
    await until(lambda: offsets(db) == {str(old): old.stat().st_size})
    conn = lock(db, locker, "EXCLUSIVE")
    new = tmp_path / "new.log"
    write(new, ["new 0", "new 1"])
    with LoopLag() as lag:
        write(old, ["old 1"])
        await until(lambda: len(got.records()) == 4)
        await until(lambda: plugin.status()["db"]["locked"])
        conn.execute("ROLLBACK")
        sizes = {str(p): p.stat().st_size for p in (old, new)}
        await until(lambda: offsets(db) == sizes)
    assert lag.worst < 1.0
    assert sorted(r["log"] for r in got.records()) == ["new 0", "new 1", "old 0", "old 1"]


async def test_stop_waits_for_the_lock_off_the_loop_and_saves_the_offset(
    running: list[Any], tmp_path: Path, locker: list[sqlite3.Connection]
) -> None:
    log = tmp_path / "app.log"
    db = tmp_path / "tail.db"
    write(log, ["one"])
    got = BatchCollector()
    plugin = make_tail(got, tag="t", path=str(log), db=str(db), read_from_head="on")
    await plugin.start()
    await until(lambda: offsets(db) == {str(log): log.stat().st_size})
    conn = lock(db, locker)
    write(log, ["two", "three"])
    await until(lambda: len(got.records()) == 3)
    # released by the loop itself: if stop() held the loop, this could not run
    asyncio.get_running_loop().call_later(0.3, conn.execute, "ROLLBACK")
    with LoopLag() as lag:
        await plugin.stop()
    assert lag.worst < 1.0
    assert offsets(db) == {str(log): log.stat().st_size}
