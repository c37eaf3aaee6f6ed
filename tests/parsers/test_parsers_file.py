"""A Fluent Bit parsers file, read by the classic reader, builds and parses."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.loader import read_sections
from relaybit.errors import ConfigErrors
from relaybit.parsers import build_parsers

PARSERS_CONF = r"""
[PARSER]
    Name   apache2
    Format regex
    Regex  ^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>.*)")?$
    Time_Key time
    Time_Format %d/%b/%Y:%H:%M:%S %z
    Types code:integer size:integer

[PARSER]
    Name         docker
    Format       json
    Time_Key     time
    Time_Format  %Y-%m-%dT%H:%M:%S.%L
    Time_Keep    On
    # Command      |     Decoder   | Field | Optional Action
    Decode_Field_As   escaped_utf8   log        do_next
    Decode_Field_As   escaped        log

[PARSER]
    Name        logfmt
    Format      logfmt
    Time_Format %Y-%m-%dT%H:%M:%S.%L%z
"""


def test_stock_style_file(tmp_path: Path) -> None:
    path = tmp_path / "parsers.conf"
    path.write_text(PARSERS_CONF)
    sections = [s for s in read_sections(path) if s.kind == "parser"]
    parsers = build_parsers(sections)
    assert sorted(parsers) == ["apache2", "docker", "logfmt"]
    line = '127.0.0.1 - - [01/Feb/2024:10:00:00 +0100] "GET /x HTTP/1.1" 404 12 "-" "curl/8"'
    assert parsers["apache2"].parse(line) == (
        EventTime(calendar.timegm((2024, 2, 1, 9, 0, 0))),
        {
            "host": "127.0.0.1",
            "user": "-",
            "method": "GET",
            "path": "/x",
            "code": 404,
            "size": 12,
            "referer": "-",
            "agent": "curl/8",
        },
    )
    when, record = parsers["logfmt"].parse("time=2024-02-01T10:00:00.25+01:00 a=1") or (None, {})
    assert when == EventTime(calendar.timegm((2024, 2, 1, 9, 0, 0)), 250_000_000)
    assert record == {"a": "1"}


def test_bad_section_errors_point_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "parsers.conf"
    path.write_text("[PARSER]\n    Name broken\n    Format regex\n    Regex ^(?<a>x\n")
    with pytest.raises(ConfigErrors) as info:
        build_parsers(s for s in read_sections(path) if s.kind == "parser")
    assert f"{path}:4:" in str(info.value)
    assert "[PARSER] broken" in str(info.value)
