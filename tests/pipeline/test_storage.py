"""Filesystem storage: crash (no shutdown) then restart delivers; torn tails; deletion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pipeline_helpers import (
    GateOutput,
    ListOutput,
    ScriptedOutput,
    chunk_files,
    entries,
    fs_engine,
    records_of,
)

from relaybit.pipeline.storage import FileStorage, decode_chunk, encode_header
from relaybit.plugins.base import FlushResult
from relaybit.tag import compile_match


def test_chunk_file_round_trip(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    f = storage.create("tail.0", "0001-a", "app.log", 12.5)
    data1, n1 = entries(3)
    data2, n2 = entries(2, start=3)
    f.append(data1, n1)
    f.append(data2, n2)
    f.close(sync=True)
    tag, created, data, records, valid = decode_chunk(f.path.read_bytes())
    assert (tag, created, data, records) == ("app.log", 12.5, data1 + data2, 5)
    assert valid == f.path.stat().st_size


@pytest.mark.parametrize("cut", [1, 5, 12, 20])
def test_torn_tail_is_truncated_and_counted(tmp_path: Path, cut: int) -> None:
    storage = FileStorage(tmp_path)
    f = storage.create("in.0", "0002-b", "t", 0.0)
    good, n = entries(4)
    f.append(good, n)
    second, m = entries(4, start=4)
    f.append(second, m)
    f.close(sync=False)
    size = f.path.stat().st_size
    os.truncate(f.path, size - cut)  # the second block was torn by a crash
    (ref,) = storage.scan()
    loaded = storage.load(ref)
    assert loaded is not None
    assert loaded.records == 4 and loaded.data == good
    kept = size - 12 - len(second)  # the file now ends after the first block
    assert f.path.stat().st_size == kept
    assert storage.irrecoverable_bytes == size - cut - kept


def test_corrupt_block_stops_reading_and_bad_header_is_set_aside(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    f = storage.create("in.0", "0003-c", "t", 0.0)
    good, n = entries(2)
    f.append(good, n)
    f.append(*entries(2, start=2))
    f.close(sync=False)
    raw = bytearray(f.path.read_bytes())
    raw[-1] ^= 0xFF  # flip a bit in the last block's data
    f.path.write_bytes(bytes(raw))
    bad = tmp_path / "in.0" / "0004-d.rbc"
    bad.write_bytes(b"XXXX" + encode_header("t", 0.0)[4:] + b"junk")
    refs = storage.scan()
    loaded = [storage.load(ref) for ref in refs]
    assert loaded[0] is not None and loaded[0].records == 2 and loaded[0].data == good
    assert loaded[1] is None
    assert (tmp_path / "in.0" / "0004-d.rbc.corrupt").exists()
    assert storage.corrupt_files == 1


async def test_survives_crash_and_delivers_after_restart(tmp_path: Path) -> None:
    first = fs_engine(tmp_path)
    emit = first.add_input("tail.0", storage_type="filesystem")
    first.add_output("out.0", GateOutput(), compile_match("*"))  # never confirms
    await first.start()
    await emit("app", *entries(5))
    await emit("app", *entries(5, start=5))
    await emit("sys", *entries(1, start=100))
    # emit returned: the records are in chunk files although nothing was sealed
    assert len(chunk_files(tmp_path)) == 2
    # crash: no stop(), no seal, no close: a new engine on the same directory
    second = fs_engine(tmp_path)
    second.add_input("tail.0", storage_type="filesystem")
    out = ListOutput()
    second.add_output("out.0", out, compile_match("*"))
    await second.start()
    assert await second.drain(2)
    assert sorted(r["n"] for r in out.records) == [*range(10), 100]
    assert {c.tag for c in out.chunks} == {"app", "sys"}
    assert chunk_files(tmp_path) == []
    assert second.status()["storage"]["backlog_records_loaded"] == 11
    await second.stop()
    for task in first._workers:  # the crashed engine's tasks, for a clean test loop
        task.cancel()


async def test_file_deleted_only_after_every_output_confirmed(tmp_path: Path) -> None:
    engine = fs_engine(tmp_path)
    emit = engine.add_input("tail.0", storage_type="filesystem")
    fast, gate = ListOutput(), GateOutput()
    engine.add_output("fast.0", fast, compile_match("*"))
    engine.add_output("slow.0", gate, compile_match("*"))
    await engine.start()
    await emit("t", *entries(3))
    engine.flush_now()
    await gate.started.wait()
    assert len(fast.chunks) == 1
    assert len(chunk_files(tmp_path)) == 1  # slow.0 has not confirmed yet
    gate.gate.set()
    assert await engine.drain(2)
    assert chunk_files(tmp_path) == []
    await engine.stop()


async def test_stop_keeps_undelivered_chunks_for_next_start(tmp_path: Path) -> None:
    engine = fs_engine(tmp_path, grace=0.05)
    emit = engine.add_input("tail.0", storage_type="filesystem")
    engine.add_output(
        "out.0",
        ScriptedOutput([], then=FlushResult.RETRY),
        compile_match("*"),
        retry_limit="no_limits",
    )
    await engine.start()
    await emit("t", *entries(4))
    assert await engine.stop() == 4
    (path,) = chunk_files(tmp_path)
    again = fs_engine(tmp_path)
    out = ListOutput()
    again.add_output("out.0", out, compile_match("*"))
    await again.start()
    assert await again.drain(2)
    assert [r["n"] for r in records_of(out.chunks)] == [0, 1, 2, 3]
    assert not path.exists()
    await again.stop()


async def test_sync_full_and_backlog_mem_limit(tmp_path: Path) -> None:
    first = fs_engine(tmp_path, storage_sync="full")
    emit = first.add_input("in.0", storage_type="filesystem")
    first.add_output("out.0", GateOutput(), compile_match("*"))
    for i in range(5):  # five chunk files, one per tag
        await emit(f"t{i}", *entries(10, start=i * 10))
    assert len(chunk_files(tmp_path)) == 5
    second = fs_engine(tmp_path, storage_backlog_mem_limit=1)  # one chunk in memory at once
    gate = GateOutput()
    second.add_output("out.0", gate, compile_match("*"))
    await second.start()
    await gate.started.wait()
    assert second.status()["storage"]["backlog_files_waiting"] == 4
    gate.gate.set()
    assert await second.drain(2)
    assert sorted(r["n"] for r in records_of(gate.chunks)) == list(range(50))
    await second.stop()
