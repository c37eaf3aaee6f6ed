"""Filters in the engine never cost records: odd bytes, odd results, odd values."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pipeline_helpers import FuncFilter, ListOutput, entries, records_of

from relaybit.clock import SYSTEM_CLOCK
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import FilterPlugin
from relaybit.plugins.inputs.lines import LinePacker, now_ext
from relaybit.tag import compile_match


def make_engine() -> Engine:
    return Engine(EngineSettings(flush=0.0, grace=2.0))


async def test_invalid_utf8_lines_pass_a_filter_byte_for_byte() -> None:
    # tail/tcp keep lines that are not UTF-8 as raw msgpack str; a filter decodes
    # them with surrogateescape, so the engine must encode them back the same way
    # (it raised UnicodeEncodeError out of emit: the tail input died on such a line)
    engine = make_engine()
    emit = engine.add_input("tail.0")
    engine.add_filter("modify.0", FuncFilter(lambda r: {**r, "env": "prod"}), compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    data = LinePacker("log").pack([b"ok", b"bad \xff\xfe end"], now_ext(SYSTEM_CLOCK))
    await emit("t", data, 2)
    assert await engine.drain(2)
    raw = out.chunks[0].data
    assert b"bad \xff\xfe end" in raw
    assert [r["env"] for r in out.records] == ["prod", "prod"]
    await engine.stop()


async def test_a_lone_surrogate_a_filter_leaves_is_written_as_fluent_bit_writes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a filter (a plugin's, or a parser's) that leaves "\ud800" in a record: the batch
    # could not be encoded and passed unfiltered, one error a batch; now U+FFFD (Fluent
    # Bit's bytes), the filter's work kept, lines that are not UTF-8 still byte for byte
    engine = make_engine()
    emit = engine.add_input("tail.0")
    cut = FuncFilter(lambda r: {**r, "cut": "\ud83d", "\udfffk": 1})
    engine.add_filter("cut.0", cut, compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    data = LinePacker("log").pack([b"ok", b"bad \xff end"], now_ext(SYSTEM_CLOCK))
    await emit("t", data, 2)
    assert await engine.drain(2)
    raw = out.chunks[0].data
    assert b"bad \xff end" in raw and raw.count(b"\xef\xbf\xbd") == 4
    assert [r["cut"] for r in out.records] == ["\ufffd", "\ufffd"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await engine.stop()


class _Unpackable:
    pass


class BadValueFilter(FilterPlugin):
    """Puts a value msgpack cannot encode into every record."""

    def __init__(self) -> None:
        pass

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return [(t, {**r, "obj": _Unpackable()}) for t, r in entries]


class NoneFilter(FilterPlugin):
    """A buggy filter that returns None instead of a list."""

    def __init__(self) -> None:
        pass

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> Any:
        return None


async def test_a_filter_result_that_cannot_be_encoded_passes_records_unchanged() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("bad.0", BadValueFilter(), compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(3))  # raised TypeError out of emit
    assert await engine.drain(2)
    assert out.records == [{"n": 0}, {"n": 1}, {"n": 2}]
    await engine.stop()


async def test_a_filter_returning_none_does_not_drop_the_records() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("none.0", NoneFilter(), compile_match("*"))
    engine.add_filter("modify.0", FuncFilter(lambda r: {**r, "seen": True}), compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(2))  # the two records silently vanished
    assert await engine.drain(2)
    assert out.records == [{"n": 0, "seen": True}, {"n": 1, "seen": True}]
    await engine.stop()


async def test_filtered_records_keep_their_time() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("modify.0", FuncFilter(lambda r: r), compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(1))
    assert await engine.drain(2)
    assert [t for t, _ in iter_entries(out.chunks[0].data)] == [EventTime(1_700_000_000, 0)]
    assert records_of(out.chunks) == [{"n": 0}]
    await engine.stop()
