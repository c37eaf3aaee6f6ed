"""Filesystem storage limits: ``storage.max_chunks_up`` (chunks up and down),
``storage.pause_on_chunks_overlimit``, ``storage.total_limit_size`` and
``storage.delete_irrecoverable_chunks``; disk syncs off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import GateOutput, ListOutput, chunk_files, entries, records_of
from pipeline_helpers import fs_engine as shared_fs_engine

from relaybit.codec.msgpack import iter_entries
from relaybit.pipeline import storage as storage_module
from relaybit.pipeline.chunk import Chunk, DownChunk
from relaybit.pipeline.engine import Engine
from relaybit.pipeline.storage import encode_header
from relaybit.plugins.base import FlushResult, OutputPlugin
from relaybit.tag import compile_match
from relaybit.testing import wait_for

CHUNK = 1024  #: the chunk size limit of these tests (Fluent Bit's is 2 MB)
BATCH = 16  #: records per emit (about 250 bytes: four emits to a chunk)

#: small chunks, so a few emits fill one and the limits are reached quickly
fs_engine = functools.partial(shared_fs_engine, seed=7, chunk_size_limit=CHUNK)


def chunks_in_memory(engine: Engine) -> int:
    """Filesystem chunks whose data is in memory, counted from the engine's state."""
    open_up = sum(
        1
        for buf in engine.inputs.values()
        for chunk in buf.open.values()
        if chunk.file is not None and chunk.parts
    )
    sealed_up = sum(
        1
        for task in engine._tasks.values()
        if task.path is not None and not task.backlog and task.chunk.data
    )
    return open_up + sealed_up


class OutageOutput(OutputPlugin):
    """Down (each flush waits, or answers RETRY) until :meth:`recover`; notes memory."""

    def __init__(self, engine: Engine, *, retry: bool = False) -> None:
        self.engine = engine
        self.retry = retry
        self.up = asyncio.Event()
        self.attempts = 0
        self.chunks: list[Chunk] = []
        self.max_in_memory = 0

    def recover(self) -> None:
        self.up.set()

    def __repr__(self) -> str:
        return f"<OutageOutput up={self.up.is_set()} flushed={len(self.chunks)}>"

    async def flush(self, chunk: Chunk) -> FlushResult:
        assert chunk.data, "an output was given a chunk without its data"
        self.attempts += 1
        self.max_in_memory = max(self.max_in_memory, chunks_in_memory(self.engine))
        if not self.up.is_set():
            if self.retry:
                return FlushResult.RETRY
            await self.up.wait()
        self.chunks.append(chunk)
        return FlushResult.OK


async def emit_sequence(
    emit: Callable[[str, bytes, int], Any],
    engine: Engine,
    tags: list[str],
    per_tag: int,
    on_emit: Callable[[], None] = lambda: None,
    *,
    pace: bool = False,
) -> None:
    """Emit ``per_tag`` records numbered 0.. under each tag, interleaved, BATCH at a time.

    ``pace``: let the other tasks (outputs) run after each emit.
    """
    for start in range(0, per_tag, BATCH):
        for tag in tags:
            await emit(tag, *entries(BATCH, start=start))
            on_emit()
            if pace:
                await asyncio.sleep(0)


def by_tag(chunks: list[Chunk]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for chunk in chunks:
        out.setdefault(chunk.tag, []).extend(r["n"] for _, r in iter_entries(chunk.data))
    return out


# -- storage.max_chunks_up ----------------------------------------------------


async def test_long_outage_keeps_at_most_max_chunks_up_in_memory(tmp_path: Path) -> None:
    limit = 4
    engine = fs_engine(tmp_path, storage_max_chunks_up=limit)
    emit = engine.add_input("tail.0", storage_type="filesystem")
    out = OutageOutput(engine)
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    peaks: list[int] = []
    tags, per_tag = ["a", "b"], 3200  # 2 x 200 emits: about 50 times limit x CHUNK

    await emit_sequence(emit, engine, tags, per_tag, lambda: peaks.append(chunks_in_memory(engine)))
    engine.flush_now()
    status = engine.status()["storage"]
    assert max(peaks) <= limit
    assert engine.chunks_up.peak <= limit
    assert status["chunks_down"] > 10 * limit  # the backlog waits on disk, not in memory
    assert len(chunk_files(tmp_path)) == engine.pending_chunks > 10 * limit

    out.recover()
    assert await engine.drain(10)
    assert out.max_in_memory <= limit
    assert engine.chunks_up.peak <= limit
    got = by_tag(out.chunks)
    assert got == {tag: list(range(per_tag)) for tag in tags}  # once each, in order per tag
    assert chunk_files(tmp_path) == []
    assert engine.chunks_up.count == 0
    await engine.stop()


async def test_outage_with_retries_delivers_every_record_once(tmp_path: Path) -> None:
    limit = 3
    engine = fs_engine(tmp_path, storage_max_chunks_up=limit)
    emit = engine.add_input("tail.0", storage_type="filesystem")
    out = OutageOutput(engine, retry=True)
    engine.add_output("out.0", out, compile_match("*"), retry_limit="no_limits", workers=2)
    await engine.start()
    peaks: list[int] = []
    await emit_sequence(emit, engine, ["a"], 1600, lambda: peaks.append(chunks_in_memory(engine)))
    engine.flush_now()
    await wait_for(lambda: out.attempts > 3 * engine.pending_chunks)  # retried all round
    out.recover()
    assert await engine.drain(10)
    assert max(peaks) <= limit and out.max_in_memory <= limit
    assert engine.chunks_up.peak <= limit
    assert sorted(by_tag(out.chunks)["a"]) == list(range(1600))
    assert engine.outputs["out.0"].retries > 0
    assert chunk_files(tmp_path) == []
    await engine.stop()


async def test_two_outputs_read_a_down_chunk_back_once_each(tmp_path: Path) -> None:
    engine = fs_engine(tmp_path, storage_max_chunks_up=1)
    emit = engine.add_input("in.0", storage_type="filesystem")
    first, second = OutageOutput(engine), OutageOutput(engine)
    engine.add_output("one.0", first, compile_match("*"))
    engine.add_output("two.0", second, compile_match("*"))
    await engine.start()
    await emit_sequence(emit, engine, ["t"], 400)
    engine.flush_now()
    assert engine.status()["storage"]["chunks_down"] > 5
    first.recover()
    await wait_for(lambda: sum(c.records for c in first.chunks) == 400)
    assert chunk_files(tmp_path)  # two.0 has not confirmed
    second.recover()
    assert await engine.drain(5)
    assert by_tag(first.chunks)["t"] == by_tag(second.chunks)["t"] == list(range(400))
    assert first.max_in_memory <= 1 and second.max_in_memory <= 1
    assert chunk_files(tmp_path) == []
    await engine.stop()


async def test_healthy_output_keeps_chunks_up(tmp_path: Path) -> None:
    engine = fs_engine(tmp_path, storage_max_chunks_up=2)
    emit = engine.add_input("in.0", storage_type="filesystem")
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    for i in range(40):
        await emit("t", *entries(BATCH, start=i * BATCH))
        await asyncio.sleep(0)  # let the output take each chunk
    assert await engine.drain(5)
    assert records_of(out.chunks) == [{"n": i} for i in range(40 * BATCH)]
    assert not any(isinstance(c, DownChunk) for c in out.chunks)
    await engine.stop()


# -- storage.pause_on_chunks_overlimit ---------------------------------------


async def test_pause_on_chunks_overlimit_pauses_instead_of_going_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relaybit.input")
    engine = fs_engine(tmp_path, storage_max_chunks_up=2)
    emit = engine.add_input("tail.0", storage_type="filesystem", pause_on_chunks_overlimit=True)
    out = OutageOutput(engine)
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    producer = asyncio.create_task(emit_sequence(emit, engine, ["t"], 800))
    buf = engine.inputs["tail.0"]
    await wait_for(lambda: buf.paused)
    assert not producer.done()  # emit waits while paused
    assert engine.chunks_up.count == 2
    assert engine.status()["storage"]["chunks_down"] == 0  # nothing went down
    assert "tail.0 paused (storage buf overlimit 2/2)" in caplog.text
    out.recover()
    await producer
    assert await engine.drain(5)
    assert by_tag(out.chunks)["t"] == list(range(800))
    assert buf.paused_count >= 1
    assert "tail.0 resume (storage buf overlimit" in caplog.text
    assert engine.chunks_up.peak <= 2
    await engine.stop()


# -- storage.total_limit_size ------------------------------------------------


async def test_total_limit_size_drops_the_oldest_chunks_of_that_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limit = 3 * CHUNK
    engine = fs_engine(tmp_path, storage_max_chunks_up=4)
    emit = engine.add_input("tail.0", storage_type="filesystem")
    slow, fast = OutageOutput(engine), ListOutput()
    engine.add_output("slow.0", slow, compile_match("*"), total_limit_size=limit)
    engine.add_output("fast.0", fast, compile_match("*"))
    await engine.start()
    slot = engine.outputs["slow.0"]
    seen: list[int] = []
    await emit_sequence(
        emit, engine, ["t"], 1600, lambda: seen.append(slot.stored_bytes), pace=True
    )
    engine.flush_now()
    await wait_for(lambda: sum(c.records for c in fast.chunks) == 1600)
    in_flight = slow.attempts and CHUNK  # the chunk being flushed is never dropped
    assert max(seen) <= limit + in_flight
    assert slot.dropped_records > 0
    assert "storage.total_limit_size reached" in caplog.text
    # fast.0 confirmed everything: only the chunks slow.0 still queues are on disk
    assert len(chunk_files(tmp_path)) == len(slot.stored)

    slow.recover()
    assert await engine.drain(5)
    assert by_tag(fast.chunks)["t"] == list(range(1600))
    delivered = by_tag(slow.chunks)["t"]
    first = [r["n"] for _, r in iter_entries(slow.chunks[0].data)]
    assert delivered[: len(first)] == first == list(range(len(first)))  # in flight, kept
    newest = delivered[len(first) :]
    assert newest == list(range(1600 - len(newest), 1600))  # the newest survive
    assert len(delivered) + slot.dropped_records == 1600
    assert chunk_files(tmp_path) == [] and slot.stored_bytes == 0
    await engine.stop()


async def test_total_limit_size_ignores_memory_inputs(tmp_path: Path) -> None:
    engine = fs_engine(tmp_path)
    emit = engine.add_input("mem.0")
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"), total_limit_size=CHUNK)
    await engine.start()
    await emit_sequence(emit, engine, ["t"], 800)
    engine.flush_now()
    gate.gate.set()
    assert await engine.drain(5)
    assert engine.outputs["out.0"].dropped_records == 0
    assert len(records_of(gate.chunks)) == 800
    await engine.stop()


# -- irrecoverable chunks ----------------------------------------------------


def write_corrupt(tmp_path: Path) -> Path:
    bad = tmp_path / "in.0" / "0000000000000001-000001.rbc"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"XXXX" + encode_header("t", 0.0)[4:] + b"junk")
    return bad


@pytest.mark.parametrize("delete", [False, True])
async def test_delete_irrecoverable_chunks_at_start(tmp_path: Path, delete: bool) -> None:
    bad = write_corrupt(tmp_path)
    size = bad.stat().st_size
    engine = fs_engine(tmp_path, storage_delete_irrecoverable_chunks=delete)
    engine.add_output("out.0", ListOutput(), compile_match("*"))
    await engine.start()
    assert await engine.drain(2)  # backlog files are read in a worker thread
    status = engine.status()["storage"]
    assert status["corrupt_files"] == 1 and status["irrecoverable_bytes"] == size
    assert not bad.exists()
    assert bad.with_name(bad.name + ".corrupt").exists() is (not delete)
    await engine.stop()


@pytest.mark.parametrize("delete", [False, True])
async def test_down_chunk_corrupted_on_disk_is_dropped_and_counted(
    tmp_path: Path, delete: bool, caplog: pytest.LogCaptureFixture
) -> None:
    engine = fs_engine(
        tmp_path, storage_max_chunks_up=1, storage_delete_irrecoverable_chunks=delete
    )
    emit = engine.add_input("in.0", storage_type="filesystem")
    out = OutageOutput(engine)
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit_sequence(emit, engine, ["t"], 192)
    engine.flush_now()
    down = [t for t in engine._tasks.values() if isinstance(t.chunk, DownChunk)]
    victim = down[0]
    assert victim.path is not None
    victim.path.write_bytes(b"garbage!" * 8)
    out.recover()
    assert await engine.drain(5)
    slot = engine.outputs["out.0"]
    assert slot.dropped_records == victim.chunk.records
    assert len(records_of(out.chunks)) == 192 - victim.chunk.records
    assert engine.storage is not None and engine.storage.corrupt_files == 1
    assert "unreadable" in caplog.text
    corrupt = list(tmp_path.glob("*/*.corrupt"))
    assert len(corrupt) == (0 if delete else 1)
    assert chunk_files(tmp_path) == []
    await engine.stop()


# -- disk syncs off the event loop -------------------------------------------


@pytest.fixture
def sync_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record (thread name, inode, file size) of every fdatasync of a chunk file."""
    calls: list[tuple[str, int, int]] = []
    real = storage_module._sync

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        calls.append((threading.current_thread().name, st.st_ino, st.st_size))
        real(fd)

    monkeypatch.setattr(storage_module, "_sync", recording)
    return calls


async def test_sync_normal_syncs_at_seal_in_a_thread(
    tmp_path: Path, sync_threads: list[tuple[str, int, int]]
) -> None:
    engine = fs_engine(tmp_path)
    emit = engine.add_input("in.0", storage_type="filesystem")
    engine.add_output("out.0", GateOutput(), compile_match("*"))
    await emit("t", *entries(4))
    assert sync_threads == []  # normal: no sync per emit
    engine.flush_now()  # seal
    assert engine.storage is not None
    await engine.storage.wait_idle()
    (path,) = chunk_files(tmp_path)
    st = path.stat()
    assert sync_threads == [(sync_threads[0][0], st.st_ino, st.st_size)]
    assert sync_threads[0][0] != threading.main_thread().name
    await engine.stop(grace=0)


async def test_sync_full_is_on_disk_when_emit_returns_and_off_the_loop(
    tmp_path: Path, sync_threads: list[tuple[str, int, int]]
) -> None:
    engine = fs_engine(tmp_path, storage_sync="full")
    emit = engine.add_input("in.0", storage_type="filesystem")
    engine.add_output("out.0", GateOutput(), compile_match("*"))
    for i in range(6):  # about one and a half chunks: a seal in the middle
        await emit("t", *entries(BATCH, start=i * BATCH))
        newest = max(chunk_files(tmp_path), key=lambda f: f.name).stat()
        # a sync of the file this emit wrote to saw its whole block
        assert (newest.st_ino, newest.st_size) in {(ino, size) for _, ino, size in sync_threads}
    assert len(chunk_files(tmp_path)) == 2
    assert all(name != threading.main_thread().name for name, _, _ in sync_threads)
    await engine.stop(grace=0)


async def test_close_waits_for_the_sync_in_flight(tmp_path: Path) -> None:
    store = storage_module.FileStorage(tmp_path, sync="full")
    f = store.create("in.0", "0001-a", "t", 0.0)
    data, n = entries(8)
    f.append(data, n)
    syncing = asyncio.create_task(f.sync())
    await asyncio.sleep(0)  # the sync thread is started
    f.close_later(sync=True)  # must not close the descriptor under it
    await syncing
    await store.wait_idle()
    assert f.closed and f.sync_error is None
    assert storage_module.decode_chunk(f.path.read_bytes())[2:4] == (data, n)


# -- configuration -------------------------------------------------------------


def test_config_keys_reach_the_engine(tmp_path: Path) -> None:
    from relaybit.agent import Agent
    from relaybit.config.loader import load_config

    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"""
[SERVICE]
    storage.path                        {tmp_path / "store"}
    storage.max_chunks_up               7
    storage.delete_irrecoverable_chunks on
[INPUT]
    name                              dummy
    storage.type                      filesystem
    storage.pause_on_chunks_overlimit on
[OUTPUT]
    name                     null
    match                    *
    storage.total_limit_size 5M
"""
    )
    agent = Agent(load_config(conf))
    agent.build()
    engine = agent.engine
    assert engine.chunks_up.limit == 7
    assert engine.storage is not None and engine.storage.delete_irrecoverable
    assert engine.inputs["dummy.0"].pause_on_chunks_overlimit
    assert engine.outputs["null.0"].total_limit_size == 5 * 1024 * 1024
