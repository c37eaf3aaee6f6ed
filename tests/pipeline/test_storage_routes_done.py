"""Restart: a chunk goes again only to the outputs that had not finished it; backlog reads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_helpers import GateOutput, ListOutput, ScriptedOutput, chunk_files, entries, fs_engine

from relaybit.pipeline.engine import Engine
from relaybit.pipeline.storage import (
    FileStorage,
    decode_routes_done,
    done_path,
    encode_route_done,
)
from relaybit.plugins.base import FlushResult, OutputPlugin
from relaybit.tag import compile_match
from relaybit.testing import wait_for


def sidecars(path: Path) -> list[Path]:
    return sorted(path.glob("*/*.rbc.done"))


@pytest.fixture
def abandoned() -> Iterator[list[Engine]]:
    """Engines left running as after ``kill -9``; their tasks are cancelled at the end."""
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        for task in engine._workers:
            task.cancel()


async def restart(path: Path, outputs: dict[str, OutputPlugin]) -> Engine:
    engine = fs_engine(path)
    engine.add_input("tail.0", storage_type="filesystem")
    for name, plugin in outputs.items():
        engine.add_output(name, plugin, compile_match("*"))
    await engine.start()
    assert await engine.drain(2)
    return engine


@pytest.mark.parametrize("first_result", [FlushResult.OK, FlushResult.ERROR])
@pytest.mark.parametrize("ending", ["crash", "stop"])
async def test_restart_sends_the_chunk_only_to_the_output_that_had_not_finished(
    tmp_path: Path, abandoned: list[Engine], first_result: FlushResult, ending: str
) -> None:
    first = fs_engine(tmp_path, grace=0.05)
    emit = first.add_input("tail.0", storage_type="filesystem")
    finisher, slow = ScriptedOutput([first_result]), GateOutput()
    first.add_output("a.0", finisher, compile_match("*"))
    first.add_output("b.0", slow, compile_match("*"))
    await first.start()
    await emit("app", *entries(3))
    first.flush_now()
    await slow.started.wait()
    await wait_for(lambda: bool(finisher.calls) and bool(sidecars(tmp_path)))
    (chunk,) = chunk_files(tmp_path)
    assert sidecars(tmp_path) == [done_path(chunk)]
    if ending == "crash":  # kill -9: no stop, nothing closed
        abandoned.append(first)
    else:  # b.0 is still flushing when the grace period ends
        assert await first.stop() == 3
    again_a, again_b = ListOutput(), ListOutput()
    second = await restart(tmp_path, {"a.0": again_a, "b.0": again_b})
    assert again_a.chunks == []  # it had confirmed (or given up): no duplicate
    assert [r["n"] for r in again_b.records] == [0, 1, 2]  # once
    assert chunk_files(tmp_path) == [] and sidecars(tmp_path) == []
    await second.stop()


async def test_every_finished_output_is_recorded_and_the_last_one_deletes(
    tmp_path: Path, abandoned: list[Engine]
) -> None:
    first = fs_engine(tmp_path)
    emit = first.add_input("tail.0", storage_type="filesystem")
    a, b, c = ListOutput(), ScriptedOutput([FlushResult.ERROR]), GateOutput()
    for name, plugin in (("a.0", a), ("b.0", b), ("c.0", c)):
        first.add_output(name, plugin, compile_match("*"))
    await first.start()
    await emit("app", *entries(2))
    first.flush_now()
    await wait_for(lambda: bool(a.chunks) and bool(b.calls) and c.started.is_set())
    (chunk,) = chunk_files(tmp_path)
    finished, valid = decode_routes_done(done_path(chunk).read_bytes())
    assert finished == {"a.0": "delivered", "b.0": "dropped"}
    assert valid == done_path(chunk).stat().st_size
    abandoned.append(first)
    outs = {"a.0": ListOutput(), "b.0": ListOutput(), "c.0": ListOutput()}
    second = await restart(tmp_path, dict(outs))
    assert [len(o.chunks) for o in outs.values()] == [0, 0, 1]
    assert chunk_files(tmp_path) == [] and sidecars(tmp_path) == []
    await second.stop()


async def test_a_chunk_finished_by_every_output_configured_now_is_deleted(
    tmp_path: Path, abandoned: list[Engine]
) -> None:
    first = fs_engine(tmp_path)
    emit = first.add_input("tail.0", storage_type="filesystem")
    a, gone = ListOutput(), GateOutput()
    first.add_output("a.0", a, compile_match("*"))
    first.add_output("gone.0", gone, compile_match("*"))
    await first.start()
    await emit("app", *entries(2))
    first.flush_now()
    await wait_for(lambda: bool(a.chunks) and gone.started.is_set())
    abandoned.append(first)
    again = ListOutput()
    second = await restart(tmp_path, {"a.0": again})  # gone.0 was removed from the config
    assert again.chunks == []
    assert chunk_files(tmp_path) == [] and sidecars(tmp_path) == []
    await second.stop()


def test_single_output_chunks_write_no_sidecar_and_orphans_are_removed(tmp_path: Path) -> None:
    store = FileStorage(tmp_path)
    f = store.create("in.0", "0001-a", "t", 1.0)
    f.append(*entries(1))
    f.close(sync=False)
    orphan = tmp_path / "in.0" / "0000-gone.rbc.done"
    orphan.write_bytes(encode_route_done("out.0"))  # its chunk was deleted, then a crash
    assert [ref.path for ref in store.scan()] == [f.path]
    assert not orphan.exists()
    assert sidecars(tmp_path) == []


@pytest.mark.parametrize("cut", [1, 4, 10, 14])
def test_a_torn_route_record_is_cut_off_and_later_records_still_count(
    tmp_path: Path, cut: int
) -> None:
    store = FileStorage(tmp_path, sync="full")
    f = store.create("in.0", "0001-a", "t", 1.0)
    f.append(*entries(2))
    f.close(sync=True)
    store.mark_route_done(f.path, "a.0")
    good = done_path(f.path).stat().st_size
    torn = encode_route_done("b.0", dropped=True)[:-cut]  # the crash tore the second write
    with done_path(f.path).open("ab") as side:
        side.write(torn)
    (ref,) = store.scan()
    loaded = store.load(ref)
    assert loaded is not None and loaded.routes_file
    assert loaded.finished == {"a.0": "delivered"}
    assert done_path(f.path).stat().st_size == good  # cut back: nothing hides what follows
    store.mark_route_done(f.path, "c.0", dropped=True)
    assert FileStorage.read_routes_done(f.path) == ({"a.0": "delivered", "c.0": "dropped"}, True)


async def test_a_chunk_whose_only_route_record_is_torn_goes_to_both_outputs_again(
    tmp_path: Path,
) -> None:
    store = FileStorage(tmp_path)
    f = store.create("tail.0", "0001-a", "app", 1.0)
    f.append(*entries(3))
    f.close(sync=False)
    done_path(f.path).write_bytes(encode_route_done("a.0")[:-2])
    a, b = ListOutput(), ListOutput()
    engine = await restart(tmp_path, {"a.0": a, "b.0": b})
    assert len(a.chunks) == len(b.chunks) == 1  # not known as finished: sent again
    assert chunk_files(tmp_path) == [] and sidecars(tmp_path) == []
    await engine.stop()


def test_route_record_with_a_bad_checksum_or_unknown_version_stops_the_read() -> None:
    first, second = encode_route_done("a.0"), bytearray(encode_route_done("b.0"))
    second[-1] ^= 0xFF
    assert decode_routes_done(first + bytes(second)) == ({"a.0": "delivered"}, len(first))
    newer = bytearray(encode_route_done("c.0"))
    newer[3] = 99  # a version this reader does not know
    assert decode_routes_done(first + bytes(newer)) == ({"a.0": "delivered"}, len(first))


async def test_backlog_files_are_read_off_the_event_loop_in_order(
    tmp_path: Path, abandoned: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fs_engine(tmp_path)
    emit = first.add_input("tail.0", storage_type="filesystem")
    first.add_output("out.0", GateOutput(), compile_match("*"))
    for i in range(6):  # six chunk files of one tag, one per flush
        await emit("app", *entries(2, start=2 * i))
        first.flush_now()
    abandoned.append(first)
    assert len(chunk_files(tmp_path)) == 6
    loop_thread = threading.get_ident()
    readers: list[int] = []
    real_load = FileStorage.load

    def load(self: FileStorage, ref: object) -> object:
        readers.append(threading.get_ident())
        return real_load(self, ref)  # type: ignore[arg-type]

    monkeypatch.setattr(FileStorage, "load", load)
    second = fs_engine(tmp_path, storage_backlog_mem_limit=1)  # one chunk in memory at once
    out = ListOutput()
    second.add_output("out.0", out, compile_match("*"))
    await second.start()
    assert await second.drain(2)
    assert [r["n"] for r in out.records] == list(range(12))  # the order they were written
    assert len(readers) == 6 and loop_thread not in readers
    await second.stop()


async def test_stop_while_backlog_is_being_read_keeps_the_files(
    tmp_path: Path, abandoned: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fs_engine(tmp_path)
    emit = first.add_input("tail.0", storage_type="filesystem")
    first.add_output("out.0", GateOutput(), compile_match("*"))
    await emit("app", *entries(2))
    abandoned.append(first)
    reading, release = threading.Event(), threading.Event()
    real_load = FileStorage.load

    def slow_load(self: FileStorage, ref: object) -> object:
        reading.set()
        release.wait(5)
        return real_load(self, ref)  # type: ignore[arg-type]

    monkeypatch.setattr(FileStorage, "load", slow_load)
    second = fs_engine(tmp_path)
    out = ListOutput()
    second.add_output("out.0", out, compile_match("*"))
    await second.start()
    await asyncio.to_thread(reading.wait, 5)
    assert not await second.drain(0.05)  # a file being read is pending work
    stopping = asyncio.ensure_future(second.stop(grace=0.05))
    release.set()
    assert await stopping == 0
    assert out.chunks == [] and len(chunk_files(tmp_path)) == 1
