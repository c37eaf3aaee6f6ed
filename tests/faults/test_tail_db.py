"""The tail ``db`` with a real agent process: a UTF-16 file across a stop and a
start (every line once), and a ``db`` another process holds locked (lines keep
arriving, the offset is saved once it is released)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support import (
    Processes,
    agent_conf,
    forward_output,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
)


class Utf16Writer:
    """Numbered lines (``line NNNNNNNN`` and some text past ASCII) in UTF-16LE."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        path.write_bytes(b"\xff\xfe")

    def write(self, count: int) -> None:
        text = ""
        for _ in range(count):
            self.written += 1
            text += f"line {self.written:08d} 日本語 😀 über\n"
        with self.path.open("ab") as fh:
            fh.write(text.encode("utf-16-le"))


def saved_offset(db: Path) -> int:
    """The offset tail saved for the file, -1 while its row is not written yet (the
    writes run on a thread of their own)."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT offset FROM in_tail_files").fetchone()
    except sqlite3.OperationalError:  # the table itself is not there yet
        return -1
    finally:
        conn.close()
    return int(row[0]) if row is not None else -1


def test_a_utf16_file_is_read_once_across_a_restart(procs: Processes, tmp_path: Path) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    log = tmp_path / "app.log"
    db = tmp_path / "tail.db"
    writer = Utf16Writer(log)
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf([tail_input(log, db=db, **{"unicode.encoding": "UTF-16LE"})], forward_output())
    )
    writer.write(300)
    agent = procs.agent(config)
    agent.wait_started()
    wait_until(lambda: len(received([receiver])) >= 300, what="the first 300 lines")
    assert agent.terminate() == 0
    assert saved_offset(db) == log.stat().st_size  # bytes of the file
    writer.write(200)  # while the agent is down
    agent = procs.agent(config, name="agent-restarted")
    agent.wait_started()
    writer.write(200)
    wait_until(lambda: not tally(received([receiver]), writer.written).missing, what="every line")
    assert agent.terminate() == 0
    result = tally(received([receiver]), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert {r["record"]["log"].split(" ", 2)[2] for r in received([receiver])} == {"日本語 😀 über"}


def test_a_db_locked_by_another_process_does_not_stop_the_agent(
    procs: Processes, tmp_path: Path
) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    log = tmp_path / "app.log"
    db = tmp_path / "tail.db"
    writer = Utf16Writer(log)
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf([tail_input(log, db=db, **{"unicode.encoding": "UTF-16LE"})], forward_output())
    )
    writer.write(10)
    agent = procs.agent(config)
    agent.wait_started()
    wait_until(lambda: saved_offset(db) == log.stat().st_size, what="the first offset")
    before = saved_offset(db)
    locker = sqlite3.connect(db, isolation_level=None, timeout=5)
    try:
        locker.execute("BEGIN IMMEDIATE")
        locker.execute("UPDATE in_tail_files SET created=created")  # the write lock
        for _ in range(5):
            writer.write(100)
            wait_until(
                lambda: not tally(received([receiver]), writer.written).missing,
                what="lines delivered while the db is locked",
            )
        assert saved_offset(db) == before
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: saved_offset(db) == log.stat().st_size, what="the offset saved")
    assert agent.terminate() == 0
    assert "is locked by another connection" in agent.log()
    result = tally(received([receiver]), writer.written)
    assert (result.missing, result.duplicates) == ([], 0)
