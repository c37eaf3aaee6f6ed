"""A full disk (or any chunk write error) pauses the inputs writing there; nothing is lost.

The emit whose write failed does not return (its records stay with the input:
nothing unstored is acknowledged) and is retried once there is room: when a
delivered chunk's file is deleted, or when the operator frees space.  One log
line when the writes start failing, one when they work again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pipeline_helpers import GateOutput, ListOutput, entries, fill_disk, records_of

from relaybit.pipeline import storage as storage_module
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.pipeline.storage import FileStorage, decode_chunk
from relaybit.pipeline.storage_guard import StorageWriteError
from relaybit.tag import compile_match
from relaybit.testing import wait_for

KB = 1024


def _chunk_files_valid(root: Path) -> None:
    for path in root.glob("*/*.rbc"):
        raw = path.read_bytes()
        *_rest, valid = decode_chunk(raw)
        assert valid == len(raw), f"{path} has a torn block"


def _pause_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.storage"]
    paused = sum("paused until their records can be stored" in m for m in messages)
    resumed = sum("work again" in m for m in messages)
    return paused, resumed


def test_a_short_write_then_enospc_is_cut_back_to_the_last_good_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStorage(tmp_path)
    f = store.create("tail.0", "0001-a", "app.log", 1.0)
    first, n1 = entries(3)
    f.append(first, n1)
    good = f.path.stat().st_size
    real_writev = os.writev

    def short(fd: int, parts: list[bytes]) -> int:
        return real_writev(fd, [b"".join(parts)[:15]])  # the kernel took 15 bytes ...

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")  # ... and no more

    monkeypatch.setattr(storage_module.os, "writev", short)
    monkeypatch.setattr(storage_module.os, "write", full)
    with pytest.raises(OSError):
        f.append(*entries(2, start=3))
    monkeypatch.undo()
    assert f.path.stat().st_size == good  # the 15 bytes of the torn block are gone
    assert f.size == good
    later, n_later = entries(4, start=5)
    f.append(later, n_later)
    f.close(sync=True)
    _tag, _created, data, records, valid = decode_chunk(f.path.read_bytes())
    assert (data, records, valid) == (first + later, n1 + n_later, f.path.stat().st_size)


def test_a_block_torn_by_a_real_full_disk_is_cut_back(
    small_tmpfs: Callable[[int], Path],
) -> None:
    root = small_tmpfs(256 * KB)
    store = FileStorage(root)
    f = store.create("tail.0", "0001-a", "app.log", 1.0)
    first, n1 = entries(10)
    f.append(first, n1)
    good = f.path.stat().st_size
    ballast = fill_disk(root, 8 * KB)
    big = b"x" * (64 * KB)  # the data does not have to be entries for the framing
    with pytest.raises(OSError) as raised:
        f.append(big, 1)
    assert raised.value.errno == errno.ENOSPC
    assert f.path.stat().st_size == good  # what reached the disk before ENOSPC is cut off
    ballast.unlink()
    later, n_later = entries(3, start=10)
    f.append(later, n_later)
    f.close(sync=True)
    _tag, _created, data, records, _valid = decode_chunk(f.path.read_bytes())
    assert (data, records) == (first + later, n1 + n_later)


async def test_a_full_disk_holds_the_emit_until_the_operator_frees_space(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    root = small_tmpfs(512 * KB)
    engine = Engine(EngineSettings(flush=0.2, grace=2.0, storage_path=str(root)))
    emit = engine.add_input("tail.0", storage_type="filesystem")
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("app", *entries(5))
    ballast = fill_disk(root, 16 * KB)
    held = asyncio.ensure_future(emit("app", *entries(3000, start=5)))  # ~45 KB
    await wait_for(lambda: engine.storage is not None and engine.storage.guard.paused)
    await asyncio.sleep(0.3)
    assert not held.done()  # not stored: not acknowledged
    assert engine.metrics()["input"]["tail.0"]["storage_paused"] == 1
    status = engine.status()
    assert status["storage"]["paused"] is True
    assert status["storage"]["paused_inputs"] == ["tail.0"]
    assert status["inputs"]["tail.0"]["pause_reason"] == "storage write error"
    _chunk_files_valid(root)
    ballast.unlink()  # the operator makes room
    await asyncio.wait_for(held, 5)
    assert await engine.drain(5)
    assert sorted(r["n"] for r in out.records) == list(range(3005))  # each exactly once
    assert engine.metrics()["input"]["tail.0"]["storage_paused"] == 0
    assert engine.status()["storage"]["paused"] is False
    await wait_for(lambda: _pause_lines(caplog) == (1, 1), what="the one resume line")
    await engine.stop()


async def test_delivered_chunks_free_the_space_and_the_input_resumes_on_its_own(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    root = small_tmpfs(384 * KB)
    engine = Engine(
        EngineSettings(flush=0.05, grace=2.0, storage_path=str(root)), chunk_size_limit=32 * KB
    )
    emit = engine.add_input("tail.0", storage_type="filesystem")
    gate = GateOutput()  # the receiver is down: nothing is delivered, the disk fills
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    total = 0

    async def produce() -> None:
        nonlocal total
        for i in range(60):  # 60 x ~15 KB: more than the disk holds
            await emit("app", *entries(1000, start=i * 1000))
            total += 1000

    producer = asyncio.ensure_future(produce())
    assert engine.storage is not None
    guard = engine.storage.guard
    await wait_for(lambda: guard.paused, timeout=10)
    await asyncio.sleep(0.3)
    assert not producer.done() and guard.paused
    _chunk_files_valid(root)
    gate.gate.set()  # the receiver is back: delivered chunks are deleted, room is made
    await asyncio.wait_for(producer, 20)
    assert await engine.drain(10)
    got = sorted(r["n"] for r in records_of(gate.chunks))
    assert got == list(range(total)) and total == 60_000
    await wait_for(lambda: _pause_lines(caplog)[1], what="the resume line")
    assert _pause_lines(caplog) == (1, 1)  # refills while draining: the same episode
    assert guard.pauses >= 1
    await engine.stop()


async def test_a_write_error_pauses_and_retries_and_stop_acknowledges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    engine = Engine(EngineSettings(flush=0.0, grace=1.0, storage_path=str(tmp_path)))
    emit = engine.add_input("tail.0", storage_type="filesystem")
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("app", *entries(2))
    real_writev = os.writev
    broken = True

    def failing(fd: int, parts: list[bytes]) -> int:
        if broken:
            raise OSError(errno.EIO, "Input/output error")
        return real_writev(fd, parts)

    monkeypatch.setattr(storage_module.os, "writev", failing)
    held = asyncio.ensure_future(emit("app", *entries(3, start=2)))
    assert engine.storage is not None
    await wait_for(lambda: engine.storage is not None and engine.storage.guard.write_errors >= 2)
    assert not held.done()  # retried with a backoff, still not stored
    broken = False
    await asyncio.wait_for(held, 7)
    assert engine.storage.guard.paused is False
    messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.storage"]
    assert sum("storage write error" in m and "Input/output error" in m for m in messages) == 1
    await wait_for(lambda: _pause_lines(caplog)[1] == 1, what="the resume line")
    # a write that still fails when the agent stops: the emit raises, nothing is acknowledged
    broken = True
    stuck = asyncio.ensure_future(emit("app", *entries(4, start=5)))
    await wait_for(lambda: engine.storage is not None and engine.storage.guard.paused)
    stopping = asyncio.ensure_future(engine.stop())
    with pytest.raises(StorageWriteError):
        await asyncio.wait_for(stuck, 5)
    broken = False
    await stopping
    assert sorted(r["n"] for r in out.records) == list(range(5))


def test_route_done_writes_on_a_full_disk_log_one_line_per_run_of_failures(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    root = small_tmpfs(256 * KB)
    store = FileStorage(root)
    files = []
    for i in range(4):
        f = store.create("tail.0", f"000{i}-a", "app", 1.0)
        f.append(*entries(2))
        f.close(sync=False)
        files.append(f.path)
    ballast = fill_disk(root, 0)
    for path in files[:3]:
        store.mark_route_done(path, "out.0")  # ENOSPC each time
    ballast.unlink()
    store.mark_route_done(files[3], "out.0")
    lines = [r.getMessage() for r in caplog.records if "route-done" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "cannot be written" in lines[0] or "cannot be opened" in lines[0]
    assert "written again (3 writes failed meanwhile" in lines[1]
