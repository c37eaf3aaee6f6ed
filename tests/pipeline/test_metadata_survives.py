"""[[time, metadata], record] entries keep their metadata through every filter and the chain."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.codec.records import (
    decode_entries,
    encode_entries,
    entry_metadata,
    entry_time,
    new_entry_packer,
    with_time,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "filters"))
import test_filter_golden as golden

T = EventTime(1_700_000_000, 42)
META = {"trace_id": "abc", "n": 7, "nested": {"k": [1, 2]}}


def packed(*entries: Any) -> bytes:
    p = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    return b"".join(p.pack(list(e)) for e in entries)


def items(data: bytes) -> list[Any]:
    u = msgpack.Unpacker(ext_hook=ext_hook, raw=False, strict_map_key=False)
    u.feed(data)
    return list(u)


def test_decode_encode_round_trips_every_head_byte_for_byte() -> None:
    data = packed(
        ([T, META], {"a": 1}),
        (T, {"b": b"\xff".decode("utf-8", "surrogateescape")}),
        (1_700_000_001, {"c": 2**64 - 1}),
        (1_700_000_001.5, {"d": msgpack.ExtType(5, b"xyz")}),
        ([1_700_000_002, {}], {"e": None}),
    )
    entries = decode_entries(data)
    assert encode_entries(entries, new_entry_packer()) == data
    assert entry_time(entries[0][0]) == T
    assert entry_metadata(entries[0][0]) == META
    assert entry_metadata(entries[1][0]) is None
    assert entry_time(entries[2][0]) == 1_700_000_001
    assert entry_time(entries[4][0]) == 1_700_000_002


def test_with_time_keeps_the_metadata() -> None:
    [entry] = decode_entries(packed(([T, META], {"a": 1})))
    new = EventTime(5, 6)
    head = with_time(entry[0], new)
    assert entry_metadata(head) == META
    out = items(encode_entries([(head, entry[1])], new_entry_packer()))
    assert out == [[[new, META], {"a": 1}]]
    assert with_time(1, 2) == 2


@pytest.mark.parametrize("name", [n for n in golden.CASES if not n.startswith("multiline")])
async def test_every_filter_keeps_the_metadata_of_the_entries_it_passes(name: str) -> None:
    got = await golden.run_case(name)
    for tag_items in got.values():
        for head, record in tag_items:
            if isinstance(record, dict) and record.get("msg") == "with metadata":
                assert head == [EventTime(1_700_000_001, 0), {"trace_id": "abc", "n": 7}], name


async def test_the_parser_filter_replaces_the_time_and_keeps_the_metadata() -> None:
    golden.CASES["_docker"] = (
        ((golden.ParserFilter, (("key_name", "log"), ("parser", "docker"))),),
        [([T, META], {"log": '{"log": "x", "time": "2024-05-01T12:00:00.5Z"}'})],
    )
    try:
        got = await golden.run_case("_docker")
    finally:
        del golden.CASES["_docker"]
    assert got["app.log"] == [
        [[EventTime(1714564800, 500_000_000), META], {"log": "x", "time": "2024-05-01T12:00:00.5Z"}]
    ]
