"""No input dies on an unexpected exception: logged once, restarted after a backoff.

The faults are real where they can be: the tail's offsets DB on a full tmpfs
(SQLite raises "database or disk is full" on commit), a forward client whose
records the storage cannot take.  What an input had read but not stored is
read again after the restart: every line arrives exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from input_helpers import BatchCollector, make_tail, until

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins import supervisor
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.dummy import DummyInput
from relaybit.plugins.supervisor import Restarts, supervise


@pytest.fixture(autouse=True)
def quick_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "RESTART_BASE", 0.05)


class FailingEmit(BatchCollector):
    """Keeps batches; raises a real exception on the calls listed in ``fail_on``."""

    def __init__(self, fail_on: set[int]) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.calls = 0

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            {}["a bug in a plugin"]  # KeyError, as a real bug raises it
        await super().__call__(tag, data, records)


async def test_supervise_logs_each_failure_in_one_line_and_restarts_with_a_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("relaybit.test.supervised")
    runs: list[float] = []
    restarts = Restarts()

    async def run() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) < 4:
            raise ValueError(f"boom {len(runs)}")

    await asyncio.wait_for(supervise(run, logger, "thing", restarts, base=0.02, cap=0.05), 5)
    assert len(runs) == 4 and restarts.count == 3
    assert restarts.last_error == "ValueError: boom 3"
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.05  # doubled, capped
    mine = [r for r in caplog.records if r.name == "relaybit.test.supervised"]
    errors = [r for r in mine if r.levelno == logging.ERROR]
    assert len(errors) == 3 and all(r.exc_info is None for r in errors)  # one line each
    assert "thing failed on an unexpected error (ValueError: boom 1)" in errors[0].getMessage()
    assert sum(r.exc_info is not None and r.levelno == logging.DEBUG for r in mine) == 3


async def test_tail_survives_a_failing_emit_and_rereads_what_was_not_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_bytes(b"".join(b"line %d\n" % i for i in range(50)))
    got = FailingEmit({1})
    tail = make_tail(got, tag="app", path=str(log_file), read_from_head="on")
    await tail.start()
    try:
        await until(lambda: len(got.records()) == 50)
        with log_file.open("ab") as f:  # still following after the restart
            f.write(b"".join(b"line %d\n" % i for i in range(50, 60)))
        await until(lambda: len(got.records()) == 60)
        assert [r["log"] for r in got.records()] == [f"line {i}" for i in range(60)]
        assert tail.restarts.count == 1
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 1 and "tail failed on an unexpected error (KeyError" in lines[0]
    finally:
        await tail.stop()


async def test_tail_survives_its_offsets_db_on_a_full_disk(
    tmp_path: Path, small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    disk = small_tmpfs(512 * 1024)
    db = disk / "tail.db"
    log_file = tmp_path / "app.log"
    got = BatchCollector()
    tail = make_tail(got, tag="app", path=str(log_file), read_from_head="on", db=str(db))
    log_file.write_bytes(b"".join(b"line %d\n" % i for i in range(10)))
    await tail.start()
    try:
        await until(lambda: len(got.records()) == 10)
        st = os.statvfs(disk)
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (st.f_bavail * st.f_frsize))  # the disk is full
        for batch in range(20):  # offsets committed after each batch: the WAL grows
            with log_file.open("ab") as f:
                f.write(b"".join(b"line %d\n" % i for i in range(10 + batch * 10, 20 + batch * 10)))
            await until(lambda n=20 + batch * 10: len(got.records()) >= n or tail.restarts.count)
            if tail.restarts.count:
                break
        assert tail.restarts.count >= 1, "the DB never hit the full disk"
        assert any(
            "tail failed on an unexpected error (OperationalError" in r.getMessage()
            for r in caplog.records
        )
        ballast.unlink()  # the operator frees space
        with log_file.open("ab") as f:
            f.write(b"last\n")
        await until(lambda: got.records() and got.records()[-1]["log"] == "last")
        logs = [r["log"] for r in got.records()]
        assert len(logs) == len(set(logs))  # exactly once
        size = log_file.stat().st_size
        await until(
            lambda: (
                sqlite3.connect(db).execute("SELECT offset FROM in_tail_files").fetchone()[0]
                == size
            )
        )
    finally:
        await tail.stop()


def _dummy(emit: Any, **props: str) -> DummyInput:
    raw = [RawProperty(k, v, Origin("d.conf", i + 1)) for i, (k, v) in enumerate(props.items())]
    opts = (INPUT_COMMON + DummyInput.options).resolve(raw, section="[INPUT] dummy")
    return DummyInput(InputContext(name="dummy.0", plugin="dummy", options=opts, emit=emit))


async def test_dummy_goes_on_after_an_unexpected_error() -> None:
    got = FailingEmit({2})
    dummy = _dummy(got, rate="200", samples="20")
    await dummy.start()
    try:
        await asyncio.wait_for(dummy.wait(), 10)
        assert len(got.records()) == 20 and dummy.restarts.count == 1
    finally:
        await dummy.stop()
