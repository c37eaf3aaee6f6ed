"""ParsedLines: a batch of lines -> entries, for every kind of parser; decoded and compared."""

from __future__ import annotations

from typing import Any

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.parsers import BUILTIN_PARSERS
from relaybit.parsers.packing import ParsedLines, entry_head
from relaybit.plugins.inputs.lines import time_ext

NOW = time_ext(1_700_000_000, 5)
NOW_TIME = EventTime(1_700_000_000, 5)


def entries(data: bytes) -> list[tuple[Any, Any]]:
    return list(iter_entries(data))


def test_entry_head_is_what_msgpack_writes_for_an_event_time() -> None:
    import msgpack

    from relaybit.codec.msgpack import default

    when = EventTime(1_700_000_123, 999_999_999)
    packed = msgpack.packb([when, {}], default=default)
    assert packed == entry_head(when) + b"\x80"


def test_json_lines_extra_keys_offsets_and_a_line_that_does_not_match() -> None:
    packer = ParsedLines(BUILTIN_PARSERS["json"], "log", [("file", "/var/log/a.log")], "off")
    lines = [b'{"a":1,"time":"10/Oct/2023:13:55:36 -0700"}', b"not json \xff", b'{"b":2}']
    got = entries(packer.pack(lines, NOW, [0, 45, 57]))
    assert got == [
        (EventTime(1696971336), {"a": 1, "file": "/var/log/a.log", "off": 0}),
        (NOW_TIME, {"log": "not json \udcff", "file": "/var/log/a.log", "off": 45}),
        (NOW_TIME, {"b": 2, "file": "/var/log/a.log", "off": 57}),
    ]
    assert packer.pack([], NOW) == b""


def test_no_parser_packs_lines_under_the_key_with_offsets() -> None:
    packer = ParsedLines(None, "message", (), "offset")
    assert entries(packer.pack([b"one", b"two"], NOW, [0, 4])) == [
        (NOW_TIME, {"message": "one", "offset": 0}),
        (NOW_TIME, {"message": "two", "offset": 4}),
    ]


class OwnParser:
    """A parser that is not a BaseParser: any object with parse(text)."""

    name = "own"

    def __init__(self) -> None:
        self.shared = {"same": "dict"}

    def parse(self, text: str) -> Any:
        if text == "float":
            return 1_700_000_000.5, {"t": "float"}
        if text == "int":
            return 1_700_000_001, {"t": "int"}
        if text == "bare":
            return {"t": "bare"}
        if text == "shared":
            return None, self.shared
        return None


def test_a_parser_of_another_kind_takes_the_general_path() -> None:
    own = OwnParser()
    packer = ParsedLines(own, "log", [("k", "v")])
    got = entries(packer.pack([b"float", b"int", b"bare", b"shared", b"other"], NOW))
    assert got == [
        (EventTime(1_700_000_000, 500_000_000), {"t": "float", "k": "v"}),
        (1_700_000_001, {"t": "int", "k": "v"}),
        (NOW_TIME, {"t": "bare", "k": "v"}),
        (NOW_TIME, {"same": "dict", "k": "v"}),
        (NOW_TIME, {"log": "other", "k": "v"}),
    ]
    assert own.shared == {"same": "dict"}  # the parser's own dict is not changed


def test_repeated_times_of_a_regex_parser_are_written_once_each() -> None:
    line = '1.2.3.4 - - [01/May/2024:12:00:{:02d} +0000] "GET / HTTP/1.1" 200 5 "-" "x"'
    lines = [line.format(i // 3).encode() for i in range(9)]
    got = entries(ParsedLines(BUILTIN_PARSERS["apache2"]).pack(lines, NOW))
    assert [t.seconds - 1714564800 for t, _ in got] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all("time" not in r and r["code"] == "200" for _, r in got)
