"""The built-in multiline parsers on real samples, through the pure MultilineStream."""

from __future__ import annotations

from typing import Any

from relaybit.codec.msgpack import EventTime
from relaybit.multiline import BUILTIN_MULTILINE, MultilineStream, lookup_multiline

from .samples import CRI, DOCKER, GO, JAVA, PYTHON, RUBY

T0 = EventTime(1_700_000_000, 0)


def run(
    names: str, lines: list[str], *, flush: bool = True
) -> list[tuple[EventTime, dict[str, Any]]]:
    stream = MultilineStream(lookup_multiline(names, {}, origin=None, section="[INPUT] tail"))
    out = []
    for i, line in enumerate(lines):
        out.extend(stream.feed(line, T0, now=float(i)))
    if flush:
        out.extend(stream.flush())
    return out


def logs(records: list[tuple[EventTime, dict[str, Any]]]) -> list[str]:
    return [r["log"] for _, r in records]


def test_java_trace_is_one_record_between_plain_lines() -> None:
    got = logs(run("java", ["starting", *JAVA, "next plain line"]))
    assert got == ["starting\n", "\n".join(JAVA) + "\n", "next plain line\n"]


def test_two_java_traces_in_a_row_are_two_records() -> None:
    got = logs(run("java", [*JAVA, *JAVA]))
    assert got == ["\n".join(JAVA) + "\n"] * 2


def test_python_traceback_ends_with_the_exception_line_at_once() -> None:
    stream = MultilineStream(lookup_multiline("python", {}, origin=None, section="s"))
    out = []
    for line in PYTHON:
        out.extend(stream.feed(line, T0, now=0.0))
    # emitted without waiting for another line or a flush
    assert logs(out) == ["\n".join(PYTHON) + "\n"]
    assert not stream.pending


def test_go_panic_is_one_record() -> None:
    got = logs(run("go", ["before", *GO, "after"]))
    assert got == ["before\n", "\n".join(GO) + "\n", "after\n"]


def test_ruby_backtrace() -> None:
    got = logs(run("ruby", [*RUBY, "plain"]))
    assert got == ["\n".join(RUBY) + "\n", "plain\n"]


def test_docker_split_lines_are_joined_and_keep_the_first_lines_fields() -> None:
    got = run("docker", DOCKER, flush=False)
    assert [r for _, r in got] == [
        {"log": "one, two, three\n", "stream": "stdout", "time": "2021-02-01T01:40:03.53413Z"},
        {"log": "single\n", "stream": "stderr", "time": "2021-02-01T01:40:04.0Z"},
    ]
    assert got[0][0] == EventTime(1612143603, 534130000)


def test_cri_partial_lines_are_joined() -> None:
    got = run("cri", CRI, flush=False)
    assert [r["log"] for _, r in got] == ["1a. some multiline log", "another log"]
    assert got[0][1]["stream"] == "stdout"
    assert got[0][0] == EventTime(1557255470, 904275087)


def test_docker_then_cri_tries_both_formats() -> None:
    got = run("docker, cri", [*CRI, *DOCKER, "not a container line"])
    assert logs(got) == [
        "1a. some multiline log",
        "another log",
        "one, two, three\n",
        "single\n",
        "not a container line",
    ]


def test_pending_record_is_emitted_after_its_flush_timeout() -> None:
    stream = MultilineStream([BUILTIN_MULTILINE["java"]()])
    assert stream.feed(JAVA[0], T0, now=10.0) == []
    assert stream.feed(JAVA[1], T0, now=11.0) == []
    assert stream.next_deadline() == 15.0  # 4 s after the last line
    assert stream.flush_due(14.9) == []
    assert logs(stream.flush_due(15.0)) == ["\n".join(JAVA[:2]) + "\n"]
    assert not stream.pending and stream.next_deadline() is None


def test_pending_offset_is_the_first_line_of_the_open_record() -> None:
    stream = MultilineStream([BUILTIN_MULTILINE["java"]()])
    stream.feed("plain", T0, 0.0, offset=0)
    stream.feed(JAVA[0], T0, 0.0, offset=6)
    stream.feed(JAVA[1], T0, 0.0, offset=100)
    assert stream.pending_offset() == 6
    stream.flush()
    assert stream.pending_offset() is None


def test_a_huge_record_is_emitted_in_parts_without_losing_lines(monkeypatch: Any) -> None:
    monkeypatch.setattr("relaybit.multiline.stream.MAX_RECORD_BYTES", 200)
    frames = [f"    at a.b.C.m{i}(C.java:{i})" for i in range(20)]
    got = logs(run("java", [JAVA[0], *frames]))
    assert len(got) > 1
    joined = "".join(got)
    for line in [JAVA[0], *frames]:
        assert line in joined
