"""The shared memory budget (``storage.mem_limit``): a fast input waits for a slow output.

Behaviour only, no timing: the bytes buffered never go past the limit by more
than one emit, a paused input resumes once deliveries drain the buffer, and
every record still arrives exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline_helpers import GateOutput, entries

from relaybit.codec.msgpack import iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.config.service import SERVICE_OPTIONS
from relaybit.pipeline.buffer import DEFAULT_MEM_LIMIT
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import INPUT_COMMON, FlushResult, InputContext, OutputPlugin
from relaybit.plugins.inputs.tail import TailInput
from relaybit.tag import compile_match
from relaybit.testing import wait_for


class SteppedOutput(OutputPlugin):
    """Delivers one chunk per ``step()``; notes the engine's buffered bytes at each flush."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tokens = asyncio.Semaphore(0)
        self.chunks: list[Chunk] = []
        self.held_seen: list[int] = []

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.tokens.release()

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.held_seen.append(self.engine.memory_budget.held)
        await self.tokens.acquire()
        self.chunks.append(chunk)
        return FlushResult.OK

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chunks)


async def drip(out: SteppedOutput) -> None:
    """Let the output deliver one chunk whenever it waits for one."""
    while True:
        if out.tokens.locked():
            out.step()
        await asyncio.sleep(0)


def engine_with(limit: int, chunk_size_limit: int = 2048) -> Engine:
    return Engine(
        EngineSettings(flush=0.0, grace=2.0, storage_mem_limit=limit),
        chunk_size_limit=chunk_size_limit,
    )


async def test_fast_input_never_buffers_more_than_the_limit_plus_one_emit() -> None:
    limit = 8 * 1024
    engine = engine_with(limit)
    emit = engine.add_input("fast.0")
    out = SteppedOutput(engine)
    engine.add_output("slow.0", out, compile_match("*"))
    await engine.start()
    data, n = entries(50)
    batches = 100  # far more than the limit: 100 batches of ~1 KB
    held_after_emit: list[int] = []

    async def produce() -> None:
        for _ in range(batches):
            await emit("t", data, n)
            held_after_emit.append(engine.memory_budget.held)

    producer = asyncio.create_task(produce())
    # the output takes nothing yet: the producer must stop at the limit
    await wait_for(lambda: engine.inputs["fast.0"].paused)
    assert not producer.done()
    assert engine.memory_budget.held <= limit + len(data)
    stalled_at = len(held_after_emit)
    assert stalled_at < batches
    # drain one chunk at a time until the producer is done
    while not producer.done():
        out.step()
        await asyncio.sleep(0)
    await producer
    out.step(10_000)
    assert await engine.drain(5)
    assert out.records == batches * n  # nothing lost, nothing twice
    assert max(held_after_emit) <= limit  # an emit returns only when under the limit
    assert max(out.held_seen) <= limit + len(data)
    assert engine.metrics()["input"]["fast.0"]["paused"] >= 1
    assert engine.memory_budget.held == 0 and not engine.inputs["fast.0"].paused
    await engine.stop()


async def test_inputs_share_the_budget_and_resume_together() -> None:
    engine = engine_with(4096)
    emit_a = engine.add_input("a.0")
    emit_b = engine.add_input("b.0")
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    data, n = entries(300)  # one emit is over the whole budget
    assert len(data) > 4096
    blocked_a = asyncio.create_task(emit_a("a", data, n))
    await wait_for(lambda: engine.inputs["a.0"].paused)
    blocked_b = asyncio.create_task(emit_b("b", *entries(1)))
    await wait_for(lambda: engine.inputs["b.0"].paused)  # a's bytes fill b's budget too
    assert not blocked_a.done() and not blocked_b.done()
    gate.gate.set()
    await asyncio.wait_for(asyncio.gather(blocked_a, blocked_b), 5)
    assert await engine.drain(5)
    assert sum(c.records for c in gate.chunks) == n + 1
    assert not engine.inputs["a.0"].paused and not engine.inputs["b.0"].paused
    await engine.stop()


async def test_own_mem_buf_limit_replaces_the_shared_budget() -> None:
    engine = engine_with(1024)
    emit_own = engine.add_input("own.0", mem_buf_limit=64 * 1024)
    emit_shared = engine.add_input("shared.0")
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    data, n = entries(100)
    assert 1024 < len(data) < 64 * 1024
    await asyncio.wait_for(emit_own("own", data, n), 2)  # under its own limit: no pause
    assert not engine.inputs["own.0"].paused
    assert engine.memory_budget.held == 0  # not counted in the shared budget
    await asyncio.wait_for(emit_shared("shared", *entries(1)), 2)
    gate.gate.set()
    assert await engine.drain(5)
    await engine.stop()


async def test_mem_limit_zero_keeps_fluent_bit_unbounded_behaviour() -> None:
    engine = engine_with(0)
    emit = engine.add_input("fast.0")
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    data, n = entries(50)
    for _ in range(100):
        await asyncio.wait_for(emit("t", data, n), 2)
    assert engine.inputs["fast.0"].paused_count == 0
    assert engine.memory_budget.held == 100 * len(data)
    gate.gate.set()
    assert await engine.drain(5)
    await engine.stop()


def test_service_key_and_default() -> None:
    assert EngineSettings().storage_mem_limit == DEFAULT_MEM_LIMIT
    options = SERVICE_OPTIONS.resolve(
        [RawProperty("storage.mem_limit", "16M", Origin("a.conf", 3))], section="[SERVICE]"
    )
    assert EngineSettings.from_service(options).storage_mem_limit == 16 * 1024 * 1024
    defaults = SERVICE_OPTIONS.resolve([], section="[SERVICE]")
    assert EngineSettings.from_service(defaults).storage_mem_limit == DEFAULT_MEM_LIMIT
    assert Engine().status()["memory"] == {"buffered_bytes": 0, "mem_limit": DEFAULT_MEM_LIMIT}


async def test_tail_reads_a_big_file_only_as_fast_as_the_output_delivers(tmp_path: Path) -> None:
    limit = 64 * 1024
    engine = engine_with(limit, chunk_size_limit=16 * 1024)
    log = tmp_path / "big.log"
    lines = 40_000  # ~2.4 MB: more than two 1 MB read blocks
    with log.open("w") as f:
        f.writelines(f"line {i:08d} {'x' * 40}\n" for i in range(lines))
    engine_emit = engine.add_input("tail.0")
    emitted: list[int] = []

    async def emit(tag: str, data: bytes, records: int) -> None:
        emitted.append(len(data))
        await engine_emit(tag, data, records)

    out = SteppedOutput(engine)
    engine.add_output("out.0", out, compile_match("*"))
    raw = [
        RawProperty("path", str(log), Origin("t", 1)),
        RawProperty("read_from_head", "on", Origin("t", 2)),
        RawProperty("poll_interval", "0.02", Origin("t", 3)),
    ]
    opts = (INPUT_COMMON + TailInput.options).resolve(raw, section="[INPUT] tail")
    tail = TailInput(InputContext(name="tail.0", plugin="tail", options=opts, emit=emit, tag="t"))
    await engine.start()
    await tail.start()
    try:
        await wait_for(lambda: engine.inputs["tail.0"].paused)
        (file,) = tail.files.values()
        assert file.offset < log.stat().st_size  # stopped reading: the output is slow
        assert engine.memory_budget.held <= limit + max(emitted)  # at most one read block over
        dripper = asyncio.create_task(drip(out))  # one chunk at a time, as the output asks
        await wait_for(lambda: file.offset == log.stat().st_size, timeout=20)
        await wait_for(lambda: not engine.inputs["tail.0"].paused)
        engine.flush_now()  # the last, partly filled chunk
        await wait_for(lambda: out.records == lines, timeout=20)
        dripper.cancel()
        assert max(out.held_seen) <= limit + max(emitted)
        assert max(emitted) < 2 << 20 and len(emitted) >= 3
        got = [r["log"] for c in out.chunks for _, r in iter_entries(c.data)]
        assert got == [f"line {i:08d} {'x' * 40}" for i in range(lines)]
    finally:
        await tail.stop()
        await engine.stop()
