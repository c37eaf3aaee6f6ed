"""multiline filter: Java/Python traces on real samples, buffering, flush through the emitter."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.codec.msgpack import iter_entries
from relaybit.errors import ConfigError
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import FlushResult, OutputPlugin
from relaybit.plugins.filters.multiline import MultilineFilter
from relaybit.tag import compile_match

JAVA = [
    "2024-05-01 10:20:30 INFO starting",
    'Exception in thread "main" java.lang.IllegalStateException: boom',
    "\tat com.example.App.run(App.java:42)",
    "\tat com.example.App.main(App.java:7)",
    "2024-05-01 10:20:31 INFO next line",
]


class ListOutput(OutputPlugin):
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.chunks.append(chunk)
        return FlushResult.OK

    @property
    def records(self) -> list[Any]:
        return [r for c in self.chunks for _, r in iter_entries(c.data)]


def records(lines: list[str], **extra: Any) -> list[tuple[Any, Any]]:
    return [(i + 1, {"log": line, "stream": "stderr", **extra}) for i, line in enumerate(lines)]


def logs(entries: list[tuple[Any, Any]]) -> list[str]:
    return [r["log"] for _, r in entries]


def test_buffer_off_joins_a_java_trace_within_one_batch(make_filter: Any) -> None:
    f = make_filter(MultilineFilter, ("multiline.parser", "java"), ("buffer", "off"))
    out = f.filter("app", records(JAVA))
    assert len(out) == 3
    assert out[1][1]["log"].startswith('Exception in thread "main"')
    assert "\tat com.example.App.main(App.java:7)" in out[1][1]["log"]
    assert out[1][0] == 2 and out[1][1]["stream"] == "stderr"  # first record's time and fields


def test_buffer_on_joins_across_batches_and_returns_completed_records(make_filter: Any) -> None:
    f = make_filter(MultilineFilter, ("multiline.parser", "java"))
    first = f.filter("app", records(JAVA[:3]))
    assert logs(first) == [JAVA[0]]  # the trace is still open
    second = f.filter("app", records(JAVA[3:]))
    assert second[0][1]["log"].count("\tat ") == 2
    assert second[0][1]["log"].startswith("Exception")
    assert f.status()["joined"] >= 2


def test_custom_multiline_parser_and_key_content(make_filter: Any) -> None:
    from relaybit.config.model import Section
    from relaybit.config.origin import Origin
    from relaybit.config.schema import RawProperty

    o = Origin("/etc/parsers.conf", 1)
    section = Section(
        kind="multiline_parser",
        properties=(
            RawProperty("name", "starts", o),
            RawProperty("type", "regex", o),
            RawProperty("flush_timeout", "1000", o),
            RawProperty("rule", '"start_state" "/^START/" "cont"', o),
            RawProperty("rule", '"cont" "/^ /" "cont"', o),
        ),
        origin=o,
    )
    f = make_filter(
        MultilineFilter,
        ("multiline.parser", "starts"),
        ("multiline.key_content", "msg"),
        ("buffer", "off"),
        multiline_parsers=[section],
    )
    out = f.filter("t", [(1, {"msg": "START a"}), (2, {"msg": " b"}), (3, {"msg": "START c"})])
    assert [r["msg"] for _, r in out] == ["START a\n b", "START c"]


def test_records_without_text_pass_unchanged(make_filter: Any) -> None:
    f = make_filter(MultilineFilter, ("multiline.parser", "python"), ("buffer", "off"))
    entries = [(1, {"other": 1}), (2, "not a map"), (3, {"log": 5})]
    assert f.filter("t", list(entries)) == entries


def test_partial_message_mode_joins_docker_split_records(make_filter: Any) -> None:
    f = make_filter(MultilineFilter, ("mode", "partial_message"), ("buffer", "off"))
    parts = [
        (
            1,
            {
                "log": "aaa",
                "partial_message": "true",
                "partial_id": "x",
                "partial_ordinal": "1",
                "partial_last": "false",
                "container": "web",
            },
        ),
        (2, {"log": "whole line"}),
        (
            3,
            {
                "log": "bbb",
                "partial_message": "true",
                "partial_id": "x",
                "partial_ordinal": "2",
                "partial_last": "true",
            },
        ),
    ]
    out = f.filter("t", parts)
    assert out == [(2, {"log": "whole line"}), (1, {"log": "aaabbb", "container": "web"})]


async def test_pending_record_is_emitted_after_flush_ms_through_the_engine(
    make_filter: Any,
) -> None:
    f = make_filter(
        MultilineFilter,
        ("multiline.parser", "java"),
        ("flush_ms", "50"),
        ("emitter_name", "ml_emitter"),
        ("emitter_storage.type", "memory"),
        ("emitter_mem_buf_limit", "1M"),
    )
    engine = Engine(EngineSettings(flush=0.02, grace=1.0))
    emit = engine.add_input("tail.0")
    engine.add_filter("multiline.0", f, compile_match("app"))
    out = ListOutput()
    engine.add_output("out", out, compile_match("*"))
    assert engine.inputs["ml_emitter"].mem_buf_limit == 1024 * 1024
    await engine.start()
    from relaybit.codec.msgpack import pack_entries

    batch = records(JAVA[:4])
    await emit("app", pack_entries(batch), len(batch))
    assert len(out.records) == 0 or logs([(0, r) for r in out.records]) == [JAVA[0]]
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(out.records) < 2:
        assert loop.time() < deadline, "the pending trace was never emitted"
        await asyncio.sleep(0.01)
    await engine.stop()
    assert out.records[1]["log"].count("\tat ") == 2
    assert {c.input_name for c in out.chunks} == {"tail.0", "ml_emitter"}
    assert f.status()["flushed"] == 1
    assert all(len(list(iter_entries(c.data))) >= 1 for c in out.chunks)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ((("buffer", "off"),), "missing 'multiline.parser'"),
        ((("multiline.parser", "cobol"),), "unknown multiline parser"),
        ((("multiline.parser", "java"), ("mode", "lines")), "mode"),
        ((("multiline.parser", "java"), ("flush_ms", "0")), "flush_ms"),
        ((("multiline.parser", "java"), ("emitter_storage.type", "tape")), "emitter_storage"),
    ],
)
def test_config_errors(make_filter: Any, props: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make_filter(MultilineFilter, *props)
    assert "agent.conf:" in str(info.value)
