"""Record formats shared by outputs: JSON round trips against msgpack decoding."""

from __future__ import annotations

import json

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.plugins.outputs.formats import (
    date_key_option,
    format_date,
    format_human,
    format_records,
    print_value,
)

ENTRIES = [
    (EventTime(1700000000, 123456789), {"message": "hello", "n": 1, "nested": {"a": [1, 2.5]}}),
    (EventTime(1700000001, 0), {"message": "world", "ok": True, "none": None}),
]
DATA = pack_entries(ENTRIES)


def test_json_lines_round_trip_matches_msgpack_decode() -> None:
    out = format_records(DATA, "t", "json_lines")
    lines = out.decode().splitlines()
    assert len(lines) == 2
    for line, (time, record) in zip(lines, iter_entries(DATA), strict=True):
        obj = json.loads(line)
        assert next(iter(obj)) == "date"
        assert obj["date"] == pytest.approx(time.to_float())
        del obj["date"]
        assert obj == record


def test_json_is_one_array() -> None:
    arr = json.loads(format_records(DATA, "t", "json", date_key="ts", date_format="epoch"))
    assert [o["ts"] for o in arr] == [1700000000, 1700000001]
    assert arr[0]["message"] == "hello"


def test_date_key_false_omits_time() -> None:
    key = date_key_option("false")
    assert key is None
    out = format_records(DATA, "t", "json_lines", date_key=key)
    assert "date" not in json.loads(out.splitlines()[0])


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("double", 1700000000.123456789),
        ("epoch", 1700000000),
        ("epoch_ms", 1700000000123),
        ("iso8601", "2023-11-14T22:13:20.123456Z"),
        ("java_sql_timestamp", "2023-11-14 22:13:20.123456"),
    ],
)
def test_date_formats(fmt: str, expected: object) -> None:
    assert format_date(EventTime(1700000000, 123456789), fmt) == expected


def test_plain_is_the_record_only() -> None:
    lines = format_records(DATA, "t", "plain").splitlines()
    assert json.loads(lines[1]) == ENTRIES[1][1]


def test_msgpack_is_the_chunk_itself() -> None:
    assert format_records(DATA, "t", "msgpack") == DATA


def test_unknown_format_and_date_format_raise() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        format_records(DATA, "t", "xml")
    with pytest.raises(ValueError, match="unknown date format"):
        format_records(DATA, "t", "json", date_format="rfc")


def test_invalid_utf8_is_written_back_as_its_bytes() -> None:
    raw = b"\x92\xd7\x00" + b"\x00" * 8 + b"\x81\xa3log\xa3a\xffb"  # str with a bad byte
    out = format_records(raw, "t", "plain")
    assert out == b'{"log":"a\xffb"}\n'


def test_non_map_record_and_int_time() -> None:
    data = msgpack.packb([5, "text"]) + msgpack.packb([6.5, {1: "int key"}])
    lines = format_records(data, "t", "json_lines").splitlines()
    assert json.loads(lines[0]) == {"date": 5.0, "log": "text"}
    assert json.loads(lines[1]) == {"date": 6.5, "1": "int key"}


def test_human_print_like_fluent_bit() -> None:
    out = format_human(DATA, "app.log").decode()
    first, second = out.splitlines()
    assert first.startswith('[0] app.log: [[1700000000.123456789, {}], {"message"=>"hello"')
    assert second == (
        '[1] app.log: [[1700000001.000000000, {}], {"message"=>"world", "ok"=>true, "none"=>nil}]'
    )


def test_print_value_nested() -> None:
    assert print_value({"a": [1, 2.5, "x"]}) == '{"a"=>[1, 2.500000, "x"]}'
