"""An input handing decoded entries to the engine (emit_entries): same chunks, same waits, same acks.

A real tail with a parser reads the same lines twice, once through the bytes
path (emit) and once handing its parsed records decoded (emit_entries), into a
real engine with real grep and modify filters: the chunks the output receives
must be the same bytes (memory and filesystem storage), mem_buf_limit must hold
emit_entries as it holds emit, and the tail's db offset must move only after
emit_entries returned.
"""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import GateOutput, ListOutput, chunk_files, fs_engine

from relaybit.codec.records import decode_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import BUILTIN_PARSERS
from relaybit.parsers.packing import ParsedLines
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import (
    FILTER_COMMON,
    INPUT_COMMON,
    FilterPlugin,
    InputContext,
    PluginContext,
)
from relaybit.plugins.filters.grep import GrepFilter
from relaybit.plugins.filters.modify import ModifyFilter
from relaybit.plugins.inputs.lines import time_ext
from relaybit.plugins.inputs.tail import TailInput
from relaybit.plugins.inputs.tail.db import OffsetDB
from relaybit.plugins.inputs.tcp import TcpInput
from relaybit.tag import compile_match
from relaybit.testing import FakeClock, wait_for

NOW = time_ext(1_700_000_000, 0)

LINES = [
    b'{"level":"info","msg":"GET /a 200","n":1}',
    b'{"level":"debug","msg":"dropped"}',
    b'{"level":"info","msg":"caf\xc3\xa9 \xff\xfe raw","big":18446744073709551615}',
    b'{"level":"info","msg":"\\udcc3\\udca9 escaped","neg":-9223372036854775808}',
    b'{"level":"info","msg":"huge","n":123456789012345678901234567890,"f":1.5}',
    b'{"level":"info","time":"2024-05-01T12:00:00Z","msg":"t"}',
    b"not json \xff",
    b'{"level":"info","nested":{"a":[1,{"b":null}],"t":true},"msg":"\\"q\\" \\\\ x"}',
]


def _filter(cls: type[FilterPlugin], *props: tuple[str, str]) -> Any:
    raw = [RawProperty(k, v, Origin("t.conf", i + 2)) for i, (k, v) in enumerate(props)]
    options = (FILTER_COMMON + cls.options).resolve(raw, section="[FILTER]")
    return cls(PluginContext(name=f"{cls.__name__}.0", plugin="x", options=options))


def add_filters(engine: Engine) -> None:
    engine.add_filter(
        "grep.0", _filter(GrepFilter, ("regex", "level ^info$")), compile_match("app*")
    )
    engine.add_filter(
        "modify.0",
        _filter(ModifyFilter, ("add", "host web-1"), ("rename", "msg message")),
        compile_match("app*"),
    )


def tail_of(engine: Engine, emit: Any, log: Path, *, decoded: bool, **props: str) -> TailInput:
    values = {"path": str(log), "read_from_head": "on", "poll_interval": "0.02", "parser": "json"}
    values.update(props)
    raw = [RawProperty(k, v, Origin("t.conf", i + 1)) for i, (k, v) in enumerate(values.items())]
    opts = (INPUT_COMMON + TailInput.options).resolve(raw, section="[INPUT] tail")
    ctx = InputContext(
        name="tail.0",
        plugin="tail",
        options=opts,
        emit=emit,
        tag="app",
        service={"parsers": dict(BUILTIN_PARSERS)},
        clock=FakeClock(wall=1_700_000_000.5),
        decodes=functools.partial(engine.decodes, "tail.0") if decoded else None,
        emit_entries=functools.partial(engine.emit_entries, "tail.0") if decoded else None,
    )
    return TailInput(ctx)


async def run_tail(
    tmp_path: Path, engine: Engine, out: Any, *, decoded: bool, **props: str
) -> None:
    log = tmp_path / "app.log"  # the same file both times (path_key)
    log.write_bytes(b"".join(line + b"\n" for line in LINES * 3))
    emit = engine.add_input("tail.0")
    add_filters(engine)
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    tail = tail_of(engine, emit, log, decoded=decoded, **props)
    await tail.start()
    size = os.path.getsize(log)
    try:
        await wait_for(lambda: all(f.offset >= size for f in tail.files.values()) and tail.files)
    finally:
        await tail.stop()
    assert tail.records == len(LINES) * 3
    assert await engine.drain(5)
    await engine.stop()


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"path_key": "file", "offset_key": "off"},
        {"parser": "", "path_key": "file"},  # no parser: bytes either way
        {"parser": "", "offset_key": "off"},  # records built per line: decoded
    ],
    ids=["json", "json-path-offset", "lines-path", "lines-offset"],
)
async def test_tail_through_filters_writes_the_same_chunks_either_way(
    tmp_path: Path, props: dict[str, str]
) -> None:
    got: dict[bool, bytes] = {}
    for decoded in (False, True):
        engine = Engine(EngineSettings(flush=0.0, grace=2.0))
        out = ListOutput()
        await run_tail(tmp_path, engine, out, decoded=decoded, **props)
        got[decoded] = b"".join(chunk.data for chunk in out.chunks)
        assert engine.metrics()["input"]["tail.0"]["records"] == len(LINES) * 3
    assert got[True] == got[False]
    records = [r for _, r in decode_entries(got[True])]
    assert all(r.get("host") == "web-1" for r in records)
    if props.get("parser") != "":
        assert len(records) == 6 * 3


async def test_filesystem_storage_holds_the_same_bytes(tmp_path: Path) -> None:
    got: dict[bool, list[bytes]] = {}
    for decoded in (False, True):
        root = tmp_path / f"store-{decoded}"
        engine = fs_engine(root)
        out = GateOutput()
        log = tmp_path / f"fs-{decoded}.log"
        log.write_bytes(b"".join(line + b"\n" for line in LINES))
        emit = engine.add_input("tail.0", storage_type="filesystem")
        add_filters(engine)
        engine.add_output("out.0", out, compile_match("*"))
        await engine.start()
        tail = tail_of(engine, emit, log, decoded=decoded)
        await tail.start()
        await wait_for(lambda: tail.records == len(LINES))  # noqa: B023
        await tail.stop()
        engine.flush_now()
        await wait_for(lambda: out.started.is_set())  # noqa: B023
        files = chunk_files(root)
        assert len(files) == 1
        out.gate.set()
        assert await engine.drain(5)
        await engine.stop()
        got[decoded] = [chunk.data for chunk in out.chunks]
        assert got[decoded][0] in files[0].read_bytes() if files[0].exists() else True
    assert got[True] and got[True] == got[False]


async def test_emit_entries_waits_over_mem_buf_limit() -> None:
    engine = Engine(EngineSettings(flush=0.0, grace=2.0))
    engine.add_input("tail.0", mem_buf_limit=100)
    add_filters(engine)
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    lines = [b'{"level":"info","msg":"a fairly long message %d"}' % i for i in range(20)]
    packer = ParsedLines(BUILTIN_PARSERS["json"])
    entries = packer.entries(lines, NOW)
    assert entries is not None and engine.decodes("tail.0", "app")
    assert not engine.decodes("tail.0", "other")
    blocked = asyncio.create_task(
        engine.emit_entries("tail.0", "app", entries, 20, lambda: packer.pack(lines, NOW))
    )
    await wait_for(lambda: gate.started.is_set())
    assert not blocked.done()  # the input waits while over the limit
    assert engine.inputs["tail.0"].paused
    gate.gate.set()
    await asyncio.wait_for(blocked, 2)
    assert not engine.inputs["tail.0"].paused
    assert len(decode_entries(gate.chunks[0].data)) == 20
    await engine.stop()


async def test_emit_entries_drops_nothing_when_filters_keep_nothing() -> None:
    engine = Engine(EngineSettings(flush=0.0, grace=2.0))
    engine.add_input("tail.0")
    add_filters(engine)
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    lines = [b'{"level":"debug"}']
    packer = ParsedLines(BUILTIN_PARSERS["json"])
    entries = packer.entries(lines, NOW)
    assert entries is not None
    await engine.emit_entries("tail.0", "app", entries, 1, lambda: packer.pack(lines, NOW))
    assert await engine.drain(2)
    assert out.chunks == [] and engine.metrics()["input"]["tail.0"]["records"] == 1
    await engine.stop()


async def test_tail_db_offset_moves_only_after_emit_entries_returned(tmp_path: Path) -> None:
    engine = Engine(EngineSettings(flush=0.0, grace=2.0))
    engine.add_input("tail.0", mem_buf_limit=64)
    add_filters(engine)
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    log = tmp_path / "db.log"
    log.write_bytes(b"".join(line + b"\n" for line in LINES))
    db = tmp_path / "tail.db"

    async def no_bytes(tag: str, data: bytes, records: int) -> None:
        raise AssertionError("the bytes path was taken")

    tail = tail_of(engine, no_bytes, log, decoded=True, db=str(db))
    await tail.start()
    try:
        await wait_for(lambda: gate.started.is_set())
        assert engine.inputs["tail.0"].paused
        # the row is written (off the loop), its offset not moved: emit_entries has not returned
        await wait_for(lambda: [r.offset for r in OffsetDB(db).rows()] == [0])
        gate.gate.set()
        size = log.stat().st_size
        await wait_for(lambda: [r.offset for r in OffsetDB(db).rows()] == [size])
    finally:
        await tail.stop()
    assert await engine.drain(5)
    await engine.stop()


async def _no_bytes(tag: str, data: bytes, records: int) -> None:
    raise AssertionError("the bytes path was taken")


async def test_tcp_with_a_parser_writes_the_same_chunks_either_way() -> None:
    got: dict[bool, bytes] = {}
    payload = b"".join(line + b"\n" for line in LINES * 2)
    for decoded in (False, True):
        engine = Engine(EngineSettings(flush=0.0, grace=2.0))
        emit = engine.add_input("tcp.0")
        add_filters(engine)
        out = ListOutput()
        engine.add_output("out.0", out, compile_match("*"))
        await engine.start()
        values = {"listen": "127.0.0.1", "port": "0", "format": "none", "parser": "json"}
        raw = [
            RawProperty(k, v, Origin("t.conf", i + 1)) for i, (k, v) in enumerate(values.items())
        ]
        opts = (INPUT_COMMON + TcpInput.options).resolve(raw, section="[INPUT] tcp")
        ctx = InputContext(
            name="tcp.0",
            plugin="tcp",
            options=opts,
            emit=_no_bytes if decoded else emit,
            tag="app",
            service={"parsers": dict(BUILTIN_PARSERS)},
            clock=FakeClock(wall=1_700_000_000.5),
            decodes=functools.partial(engine.decodes, "tcp.0") if decoded else None,
            emit_entries=functools.partial(engine.emit_entries, "tcp.0") if decoded else None,
        )
        plugin = TcpInput(ctx)
        await plugin.start()
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
            writer.write(payload)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await wait_for(lambda: plugin.records == len(LINES) * 2)  # noqa: B023
        finally:
            await plugin.stop()
        assert await engine.drain(5)
        await engine.stop()
        got[decoded] = b"".join(chunk.data for chunk in out.chunks)
    assert got[True] and got[True] == got[False]
