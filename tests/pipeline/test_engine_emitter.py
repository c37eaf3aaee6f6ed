"""Engine.add_emitter: a filter re-emits records under a new tag through the pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import FuncFilter, GateOutput, ListOutput, entries, fill_disk, records_of

from relaybit.codec.msgpack import pack_entries
from relaybit.codec.records import decode_entries
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.pipeline.storage_guard import StorageWriteError
from relaybit.plugins.base import AddEmitterFn, EmitterFn, FilterPlugin
from relaybit.tag import compile_match
from relaybit.testing import wait_for

KB = 1024


class MoveOdd(FilterPlugin):
    """Re-emits records with an odd ``n`` under ``odd.<tag>`` and drops them here."""

    def __init__(self, mem_buf_limit: int = 0, storage_type: str = "memory") -> None:
        self.emit: EmitterFn | None = None
        self.mem_buf_limit = mem_buf_limit
        self.storage_type = storage_type

    def bind_engine(self, add_emitter: AddEmitterFn) -> None:
        self.emit = add_emitter(
            "emitter_for_move", mem_buf_limit=self.mem_buf_limit, storage_type=self.storage_type
        )

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        assert self.emit is not None
        odd = [e for e in entries if e[1]["n"] % 2]
        if odd:
            self.emit(f"odd.{tag}", pack_entries(odd), len(odd))
        return [e for e in entries if not e[1]["n"] % 2]


def make_engine() -> Engine:
    return Engine(EngineSettings(flush=0.0, grace=2.0))


async def test_reemitted_records_are_routed_and_filtered_under_their_new_tag() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("move.0", MoveOdd(), compile_match("app"))
    engine.add_filter("mark.0", FuncFilter(lambda r: {**r, "odd": True}), compile_match("odd.*"))
    evens, odds = ListOutput(), ListOutput()
    engine.add_output("evens", evens, compile_match("app"))
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    await emit("app", *entries(5))
    assert await engine.drain(2)
    assert evens.records == [{"n": 0}, {"n": 2}, {"n": 4}]
    assert odds.records == [{"n": 1, "odd": True}, {"n": 3, "odd": True}]
    assert {c.tag for c in odds.chunks} == {"odd.app"}
    assert engine.metrics()["input"]["emitter_for_move"]["records"] == 2
    await engine.stop()


def test_an_emitter_name_used_twice_is_refused() -> None:
    engine = make_engine()
    engine.add_filter("move.0", MoveOdd(), compile_match("app"))
    with pytest.raises(ValueError, match="emitter_for_move"):
        engine.add_filter("move.1", MoveOdd(), compile_match("app"))


async def test_an_input_feeding_an_emitter_over_its_limit_waits_until_it_drains(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("move.0", MoveOdd(mem_buf_limit=10), compile_match("app"))
    odds = GateOutput()
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    held = asyncio.ensure_future(emit("app", *entries(40)))
    await wait_for(lambda: engine.status()["inputs"]["emitter_for_move"]["waiting_inputs"])
    status = engine.status()["inputs"]["emitter_for_move"]
    assert status["waiting_inputs"] == ["dummy.0"] and status["paused"] is True
    assert not held.done()  # paused by the emitter's limit: its emit does not return
    second = asyncio.ensure_future(emit("app", *entries(4, start=40)))  # waits too
    await asyncio.sleep(0.05)
    assert not second.done()
    odds.gate.set()  # the emitter's chunks are delivered: back under its limit
    await asyncio.wait_for(asyncio.gather(held, second), 5)
    assert await engine.drain(2)
    assert sorted(r["n"] for r in records_of(odds.chunks)) == list(range(1, 44, 2))
    emitter = engine.inputs["emitter_for_move"]
    assert not emitter.paused and emitter.paused_count >= 1
    assert engine.status()["inputs"]["emitter_for_move"]["waiting_inputs"] == []
    warnings = [
        r.getMessage() for r in caplog.records if "over its mem_buf_limit" in r.getMessage()
    ]
    assert len(warnings) == 1  # not one per record
    await engine.stop()


async def test_an_emitter_often_over_its_limit_is_not_logged_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="relaybit.input")
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("move.0", MoveOdd(mem_buf_limit=10), compile_match("app"))
    odds = ListOutput()
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    for i in range(5):  # over the limit, drained, over again: five episodes
        await asyncio.wait_for(emit("app", *entries(4, start=4 * i)), 5)
    assert engine.inputs["emitter_for_move"].paused_count == 5
    assert await engine.drain(2)
    assert len(odds.records) == 10
    over = [r for r in caplog.records if "over its mem_buf_limit" in r.getMessage()]
    assert [r.levelno for r in over] == [logging.WARNING] + [logging.DEBUG] * 4
    await engine.stop()


async def test_decoded_entries_wait_for_the_emitter_as_bytes_do() -> None:
    """emit_entries (a tail with a parser) runs the filters before _emit: its input
    waits for an emitter over its limit too."""
    engine = make_engine()
    engine.add_input("tail.0")
    engine.add_filter("move.0", MoveOdd(mem_buf_limit=10), compile_match("app"))
    odds = GateOutput()
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    data, n = entries(10)
    held = asyncio.ensure_future(
        engine.emit_entries("tail.0", "app", decode_entries(data), n, lambda: data)
    )
    await wait_for(lambda: engine.status()["inputs"]["emitter_for_move"]["waiting_inputs"])
    assert engine.status()["inputs"]["emitter_for_move"]["waiting_inputs"] == ["tail.0"]
    assert not held.done()
    odds.gate.set()
    await asyncio.wait_for(held, 5)
    assert await engine.drain(2)
    assert [r["n"] for r in records_of(odds.chunks)] == [1, 3, 5, 7, 9]
    await engine.stop()


def _storage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.storage"]
    return (
        sum("paused until their records can be stored" in m for m in messages),
        sum("work again" in m for m in messages),
    )


def _full_disk_engine(root: Path) -> tuple[Engine, MoveOdd, ListOutput]:
    engine = Engine(EngineSettings(flush=0.2, grace=1.0, storage_path=str(root)))
    move = MoveOdd(storage_type="filesystem")
    engine.add_filter("move.0", move, compile_match("app"))
    out = ListOutput()
    engine.add_output("out", out, compile_match("*"))
    return engine, move, out


async def test_a_full_disk_holds_the_feeding_input_and_every_record_keeps_its_new_tag(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The emitter's storage is full: the records it re-emits are held, its input
    waits (nothing passes on under its old tag), and all arrive once there is room."""
    caplog.set_level(logging.INFO)
    root = small_tmpfs(512 * KB)
    engine, _move, out = _full_disk_engine(root)
    emit = engine.add_input("dummy.0")  # memory: only the emitter writes to the disk
    await engine.start()
    await emit("app", *entries(10))
    ballast = fill_disk(root, 16 * KB)
    held = asyncio.ensure_future(emit("app", *entries(4000, start=10)))  # ~30 KB re-emitted
    guard = engine.storage.guard if engine.storage is not None else None
    assert guard is not None
    await wait_for(lambda: guard.paused, what="the emitter's write to fail")
    second = asyncio.ensure_future(emit("app", *entries(10, start=4010)))  # queued behind
    await asyncio.sleep(0.3)
    assert not held.done() and not second.done()  # paused, nothing acknowledged
    status = engine.status()["inputs"]["emitter_for_move"]
    assert status["unstored_records"] > 0 and status["waiting_inputs"] == ["dummy.0"]
    assert status["pause_reason"] == "storage write error"
    assert engine.metrics()["input"]["emitter_for_move"]["storage_paused"] == 1
    assert not [r for r in out.records if r["n"] % 2 and r["n"] >= 10]  # none under 'app'
    ballast.unlink()  # the operator makes room
    await asyncio.wait_for(asyncio.gather(held, second), 10)
    assert await engine.drain(5)
    by_tag: dict[str, list[int]] = {}
    for chunk in out.chunks:
        by_tag.setdefault(chunk.tag, []).extend(r["n"] for r in records_of([chunk]))
    assert sorted(by_tag["app"]) == list(range(0, 4020, 2))  # each once
    assert by_tag["odd.app"] == list(range(1, 4020, 2))  # each once, in order
    status = engine.status()["inputs"]["emitter_for_move"]
    assert status["unstored_records"] == 0 and status["lost_records"] == 0
    assert status["held_records"] > 0
    await wait_for(lambda: _storage_lines(caplog) == (1, 1), what="one pause, one resume line")
    assert "Traceback" not in caplog.text
    await engine.stop()
    assert engine.lost_records == 0


async def test_records_an_emitter_holds_outside_an_emit_are_stored_once_there_is_room(
    small_tmpfs: Callable[[int], Path],
) -> None:
    """A filter that re-emits from a timer (multiline's flush): no input to pause,
    the records wait in the emitter, in order."""
    root = small_tmpfs(512 * KB)
    engine, move, out = _full_disk_engine(root)
    await engine.start()
    ballast = fill_disk(root, 8 * KB)
    assert move.emit is not None
    for start in range(1, 6001, 2000):  # ~45 KB: the first or second write fails
        data, n = entries(2000, start=start)
        move.emit("odd.timer", data, n)  # never raises, never waits
    assert engine.status()["inputs"]["emitter_for_move"]["unstored_records"] > 0
    ballast.unlink()
    await wait_for(lambda: len(out.records) == 6000, timeout=10, what="every held record")
    assert [r["n"] for r in out.records] == list(range(1, 6001))
    await engine.stop()


async def test_records_still_held_when_the_agent_stops_are_counted_and_not_acknowledged(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = small_tmpfs(512 * KB)
    engine, _move, _out = _full_disk_engine(root)
    emit = engine.add_input("dummy.0")
    await engine.start()
    fill_disk(root, 8 * KB)
    held = asyncio.ensure_future(emit("app", *entries(4000)))
    await wait_for(lambda: engine.status()["inputs"]["emitter_for_move"]["unstored_records"])
    unstored = engine.status()["inputs"]["emitter_for_move"]["unstored_records"]
    await engine.stop(grace=0.5)
    with pytest.raises(StorageWriteError):
        await held  # the input acknowledges nothing of it
    assert engine.lost_records == unstored
    assert engine.status()["inputs"]["emitter_for_move"]["lost_records"] == unstored
    lines = [r.getMessage() for r in caplog.records if "before the agent stopped" in r.getMessage()]
    assert len(lines) == 1 and f"{unstored} records" in lines[0]
