"""tail's legacy docker_mode joiner (pure)."""

from __future__ import annotations

import json
from typing import Any

from relaybit.codec.msgpack import EventTime
from relaybit.multiline.docker_mode import DockerModeStream
from relaybit.parsers import BUILTIN_PARSERS

T0 = EventTime(1, 0)


def as_log(text: str, stamp: EventTime) -> tuple[EventTime, dict[str, Any]]:
    return stamp, {"log": text}


def line(log: str) -> str:
    return json.dumps({"log": log, "stream": "stdout"})


def test_docker_mode_parser_joins_lines_up_to_the_next_first_line() -> None:
    # a first line is one the parser matches: here 'json' never matches a plain log
    # text, so use a regex-like built-in: syslog-rfc3164-local needs '<pri>' starts
    first = BUILTIN_PARSERS["syslog-rfc3164-local"]
    stream = DockerModeStream(as_log, 4.0, first)
    out = []
    for log in ["<13>Jan  1 00:00:00 host app: boom\n", "  at x\n", "  at y\n"]:
        out += stream.feed(line(log), T0, 0.0)
    assert out == []
    out += stream.feed(line("<13>Jan  1 00:00:01 host app: next\n"), T0, 1.0)
    assert [json.loads(r["log"])["log"] for _, r in out] == [
        "<13>Jan  1 00:00:00 host app: boom\n  at x\n  at y\n"
    ]
    assert stream.next_deadline() == 5.0
    assert len(stream.flush_due(5.0)) == 1 and not stream.pending


def test_lines_before_any_first_line_pass_through() -> None:
    stream = DockerModeStream(as_log, 4.0, BUILTIN_PARSERS["syslog-rfc3164-local"])
    assert stream.feed(line("orphan\n"), T0, 0.0) == [(T0, {"log": line("orphan\n")})]


def test_odd_json_lines_pass_through_instead_of_raising() -> None:
    stream = DockerModeStream(as_log, 4.0, None)
    deep = '{"log": "x", "a": ' + "[" * 5000 + "]" * 5000 + "}"  # too deep for json
    assert stream.feed(deep, T0, 0.0) == [(T0, {"log": deep})]
    # a split line carrying an integer beyond 64 bits is joined, not refused
    big = '{"log": "part-", "n": 123456789012345678901234567890}'
    assert stream.feed(big, T0, 0.0) == []
    ((_, record),) = stream.feed(line("end\n"), T0, 0.1)
    assert json.loads(record["log"])["log"] == "part-end\n"
