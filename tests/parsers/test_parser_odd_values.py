"""Whatever a parser returns can be encoded: odd lines never stop an input."""

from __future__ import annotations

import msgpack

from relaybit.codec.msgpack import EventTime, default, iter_entries
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import Parser, build_parsers

PATH = "/etc/relaybit/parsers.conf"


def one(**props: str) -> Parser:
    items = tuple(RawProperty(k, v, Origin(PATH, i + 2)) for i, (k, v) in enumerate(props.items()))
    return build_parsers([Section(kind="parser", properties=items, origin=Origin(PATH, 1))])[
        props["name"]
    ]


def roundtrip(result: object) -> object:
    """Pack ``[time, record]`` as the inputs do; raises when it cannot be encoded."""
    assert isinstance(result, tuple)
    when, record = result
    packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    data = packer.pack([when if when is not None else EventTime(1, 0), record])
    return next(iter(iter_entries(data)))[1]


def test_epoch_milliseconds_with_percent_s_keep_the_field_and_encode() -> None:
    parser = one(name="j", format="json", time_key="ts", time_format="%s")
    result = parser.parse('{"ts": 1700000000000, "msg": "hi"}')
    assert result is not None
    when, _record = result
    assert when is None  # not an EventTime (struct.error when packed, before)
    assert roundtrip(result) == {"ts": 1700000000000, "msg": "hi"}


def test_json_big_integers_and_lone_surrogates_are_kept_and_encode() -> None:
    parser = one(name="j", format="json")
    # orjson refuses both; the stdlib fallback gave values msgpack cannot encode
    result = parser.parse(
        '{"id": 123456789012345678901234567890, "s": "cut \\ud83d", "n": 5, "l": "\\udc80"}'
    )
    assert result is not None
    record = roundtrip(result)
    # a lone surrogate escape is U+FFFD, as Fluent Bit 5.1.1 writes it (a low one too)
    assert record == {
        "id": "123456789012345678901234567890",
        "s": "cut \ufffd",
        "n": 5,
        "l": "\ufffd",
    }


def test_json_nested_too_deep_for_the_stdlib_does_not_match() -> None:
    parser = one(name="j", format="json")
    deep = '{"a":' * 1100 + "1" + "}" * 1100
    assert parser.parse(deep) is None  # RecursionError escaped, before


def test_types_casts_past_64_bits_keep_the_text() -> None:
    # a 128-bit trace id cast as hex (or a long digit string as integer) gave an
    # int msgpack cannot encode: the tail input reading such a line stopped
    parser = one(
        name="r",
        format="regex",
        regex=r"^(?<trace>\S+) (?<count>\d+) (?<small>\S+)$",
        types="trace:hex count:integer small:hex",
    )
    result = parser.parse("4bf92f3577b34da6a3ce929d0e0e4736 123456789012345678901234 ff")
    assert roundtrip(result) == {
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
        "count": "123456789012345678901234",
        "small": 255,
    }


def test_json_bytes_that_are_not_utf8_stay_those_bytes() -> None:
    # they became three bytes each (U+FFFD, as a lone surrogate escape); Fluent Bit keeps them
    parser = one(name="j", format="json")
    line = b'{"raw":"\xff\xfe bytes","lone":"cut \\ud83d"}'.decode("utf-8", "surrogateescape")
    result = parser.parse(line)
    assert result is not None
    packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    raw = msgpack.unpackb(packer.pack(result[1]), raw=True)
    assert raw == {b"raw": b"\xff\xfe bytes", b"lone": b"cut \xef\xbf\xbd"}
