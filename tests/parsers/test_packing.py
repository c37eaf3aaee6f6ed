"""ParsedLines: a batch of lines -> entries, for every kind of parser; decoded and compared."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.parsers import BUILTIN_PARSERS
from relaybit.parsers.base import BaseParser, ParserSettings
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


def test_time_only_parsers_write_the_time_straight_and_fall_back_for_odd_values() -> None:
    from relaybit.parsers.base import ParserSettings
    from relaybit.parsers.json import JsonParser
    from relaybit.parsers.timefmt import TimeFormat

    def parser(fmt: str, keep: bool) -> JsonParser:
        return JsonParser(ParserSettings("j", "t", TimeFormat(fmt), keep))

    lines = [
        b'{"t":"2024-05-01T12:00:00.5Z","a":1}',
        b'{"t":"2024-05-01T12:00:00.25Z","a":2}',
        b'{"t":"yesterday","a":3}',
        b'{"t":null,"a":4}',
        b'{"t":1714564800,"a":5}',
        b'{"a":6}',
    ]
    base = 1714564800
    got = entries(ParsedLines(parser("%Y-%m-%dT%H:%M:%S.%L%z", False)).pack(lines, NOW))
    assert got == [
        (EventTime(base, 500_000_000), {"a": 1}),
        (EventTime(base, 250_000_000), {"a": 2}),
        (NOW_TIME, {"t": "yesterday", "a": 3}),
        (NOW_TIME, {"t": None, "a": 4}),
        (NOW_TIME, {"t": 1714564800, "a": 5}),  # str(1714564800) is not this format
        (NOW_TIME, {"a": 6}),
    ]
    kept = entries(ParsedLines(parser("%s", True)).pack([lines[4], lines[4]], NOW))
    assert kept == [(EventTime(base), {"t": base, "a": 5})] * 2  # a number through finish()
    # the same lines through parse(), as the parser filter calls it: the same times
    for line, (when, record) in zip(lines, got, strict=True):
        parsed = parser("%Y-%m-%dT%H:%M:%S.%L%z", False).parse(line.decode())
        assert parsed is not None
        assert (parsed[0] or NOW_TIME, parsed[1]) == (when, record)


def test_parse_parts_is_parse_without_the_event_time() -> None:
    from relaybit.parsers.timefmt import TimeFormat

    for fmt, text in [
        ("%Y-%m-%dT%H:%M:%S.%L%z", "2024-05-01T12:00:00.123456789+02:00"),
        ("%Y-%m-%dT%H:%M:%S.%L%z", "2024-05-01T12:00:00Z"),
        ("%d/%b/%Y:%H:%M:%S %z", "01/May/2024:12:00:05 +0000"),
        ("%b %d %H:%M:%S", "May  1 12:00:05"),
        ("%Y", "nope"),
    ]:
        tf = TimeFormat(fmt)
        when = tf.parse(text)
        assert tf.parse_parts(text) == (None if when is None else (when.seconds, when.nanoseconds))


def test_year_less_times_are_not_kept_per_text() -> None:
    # "Jun 01 ..." means another instant next year: its entry bytes are not remembered
    packer = ParsedLines(BUILTIN_PARSERS["syslog-rfc3164"])
    packer.pack([b"<13>Jun  1 00:00:00 host app: hi"], NOW)
    assert packer._heads == {}
    packer = ParsedLines(BUILTIN_PARSERS["apache2"])
    packer.pack([b'1.2.3.4 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 5'], NOW)
    assert list(packer._heads) == ["01/May/2024:12:00:00 +0000"]


def test_no_garbage_collection_while_a_batch_is_packed() -> None:
    import gc

    seen: list[bool] = []

    class Watching:
        name = "watching"

        def parse(self, text: str) -> Any:
            seen.append(gc.isenabled())
            if text == "boom":
                raise RuntimeError("boom")
            return None, {"t": text}

    packer = ParsedLines(Watching())
    packer.pack([b"a", b"b"], NOW)
    assert seen == [False, False] and gc.isenabled()
    try:
        packer.pack([b"boom"], NOW)
    except RuntimeError:
        pass
    assert gc.isenabled()  # restored after an error too
    gc.disable()
    try:
        packer.pack([b"c"], NOW)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_logfmt_escaped_surrogates_pack_and_pair() -> None:
    # a lone escaped surrogate used to make the whole batch fail to pack: tail restarted
    # on it for ever and no line of the file was emitted
    packer = ParsedLines(BUILTIN_PARSERS["logfmt"], "log")
    lines = [b'a="\\ud800" n=1', b'smile="\\ud83d\\ude00"', b'plain="ok"', b'low="\\udc80"']
    assert [r for _t, r in entries(packer.pack(lines, NOW))] == [
        {"a": "\ufffd", "n": "1"},  # U+FFFD, as Fluent Bit's logfmt and json parser write it
        {"smile": "\U0001f600"},  # an escaped surrogate pair is the character
        {"plain": "ok"},
        {"low": "\ufffd"},  # an escape, not a byte of a line that was not UTF-8
    ]


class LoneSurrogateParser(BaseParser):
    """A parser (as a plugin could write one) whose record holds a lone surrogate."""

    format = "lone"

    def fields(self, text: str) -> dict[str, Any] | None:
        return {"t": text, "bad": "\ud800"} if text != "plain" else {"t": text}


class OwnParserOf:
    """``inner`` seen as a parser of another kind (the general path)."""

    name = "own"

    def __init__(self, inner: BaseParser) -> None:
        self.inner = inner

    def parse(self, text: str) -> Any:
        return None, self.inner.fields(text)


@pytest.mark.parametrize("kind", ["fast", "general"])
def test_a_record_msgpack_cannot_write_as_text_does_not_fail_its_batch(kind: str) -> None:
    parser: Any = LoneSurrogateParser(ParserSettings(name="lone"))
    if kind == "general":
        parser = OwnParserOf(parser)
    packer = ParsedLines(parser, "log")
    got = [r for _t, r in entries(packer.pack([b"a", b"plain", b"b"], NOW))]
    assert got == [
        {"t": "a", "bad": "\ufffd"},  # as Fluent Bit writes a lone surrogate
        {"t": "plain"},
        {"t": "b", "bad": "\ufffd"},
    ]
