"""Golden tests over every encoder of the es and http outputs.

The expected bodies live in ``golden/encoders.json`` (text, non-UTF-8 bytes as
``\\udcXX`` surrogates).  Actual and expected bodies go through the same
decoder (NDJSON lines or one JSON array, objects as key/value pair lists, so
key order counts and ``1`` is not ``1.0`` nor ``True``) and are compared.  The
goldens were written by the encoders before they were made fast; fix one only
for a bug you name.  ``RELAYBIT_REGOLD=1`` rewrites the file (then read the diff).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.records import gc_paused
from relaybit.plugins.outputs import fastjson
from relaybit.plugins.outputs.encoder_pool import EncoderPool
from relaybit.plugins.outputs.es.bulk import BulkEncoder, encode_items
from relaybit.plugins.outputs.es.settings import EsSettings
from relaybit.plugins.outputs.http.encoder import BodyEncoder, GelfKeys, encode_body

GOLDEN = Path(__file__).parent / "golden" / "encoders.json"

T_MS = EventTime(1700000000, 123_456_789)  # 2023-11-14T22:13:20.123456789Z
T_END = EventTime(1700006399, 999_999_999)  # 23:59:59.999999999, the day's last nanosecond
T_ZERO = EventTime(1700092800, 0)  # 2023-11-16T00:00:00Z
T_INT = 1600000000  # 2020-09-13T12:26:40Z, an integer time
T_FLOAT = 1650000000.25  # a float time

_PACKER = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")


def entry(time: Any, record: Any, metadata: dict[str, Any] | None = None) -> bytes:
    head: Any = [time, metadata] if metadata is not None else time
    return bytes(_PACKER.pack([head, record]))


#: one chunk holding every kind of record the encoders meet
CHUNK = b"".join(
    [
        entry(T_MS, {"msg": "hi", "level": "info"}),
        entry(T_END, {"log": "caf\udce9 not utf-8 \udcff", "k\udcfe": "key not utf-8"}),
        entry(
            T_ZERO,
            {
                "big": 2**64 - 1,
                "neg": -(2**63),
                "f": 1.5,
                "i": 1,
                "t": True,
                "n": None,
                "arr": [1, "x", {"a.b": 1}],
                "nested": {"k.d": {"x.y": 2}, "e": {}},
            },
        ),
        entry(
            T_INT, {"when": EventTime(1700000001, 500_000_000), "ext": msgpack.ExtType(5, b"ab")}
        ),
        entry(T_FLOAT, {"@timestamp": "mine", "date": "record's own date", "msg": "has keys"}),
        entry(T_MS, {"svc": "api", "rid": 42, "msg": "routed"}, metadata={"m": 1}),
        entry(T_MS, {"svc": "", "rid": "abc", "level": 3, "host": "web-1"}),
        entry(T_MS, {1: "int key", "u": "ünïcode ✓", "id": "gelf reserved"}),
        entry(T_MS, {}),
        entry(T_MS, "not a map"),
        entry(
            T_MS,
            {
                "short_message": "short",
                "full_message": {"a": 1},
                "timestamp": 1700000000.5,
                "level": "warn",
                "_under": 1,
            },
        ),
        entry(T_MS, {"message": "the message", "lvl": "6", "hst": 7, "ts": 1.25, "m2": [1, 2]}),
    ]
)

#: records every JSON output writes the same way on its fast path: maps of UTF-8 strings,
#: numbers, booleans and nil, nested; no bin or ext value, no non-string key
CLEAN = b"".join(
    [
        entry(T_MS, {"msg": "hi", "level": "info"}),
        entry(T_END, {"log": "a line", "svc": "api", "rid": 7}),
        entry(
            T_ZERO,
            {
                "big": 2**64 - 1,
                "neg": -(2**63),
                "f": 1.5,
                "e": 1e20,
                "i": 1,
                "t": True,
                "n": None,
                "arr": [1, "x", {"a.b": 1}],
                "nested": {"k.d": {"x.y": 2}, "e": {}},
            },
        ),
        entry(T_INT, {"@timestamp": "mine", "date": "own date", "msg": "has keys", "ts": 1}),
        entry(T_FLOAT, {"svc": "web", "rid": "abc", "_flb-key": "own tag", "the_tag": 1}),
        entry(T_MS, {"u": "ünïcode ✓ \u2028 \x00", "id": "gelf reserved"}, metadata={"m": 1}),
        entry(T_MS, {}),
        entry(T_END, {"short_message": "short", "level": 3, "host": "web-1", "timestamp": 2.5}),
        entry(T_MS, {"deep": {"a": [{"b": [{"c": [1, {"d": "e"}]}]}]}}),
    ]
)
CHUNKS = {"mixed": CHUNK, "clean": CLEAN}

ES_CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "logstash": {"logstash_format": True},
    "logstash_prefix_key": {
        "logstash_format": True,
        "logstash_prefix_key": "svc",
        "logstash_prefix": "logs",
        "logstash_prefix_separator": "_",
        "logstash_dateformat": "%Y%m%d",
    },
    "logstash_prefix_key_dollar": {"logstash_format": True, "logstash_prefix_key": "$svc"},
    "current_time_index": {"logstash_format": True, "current_time_index": True},
    "time_key_format_nanos": {
        "time_key": "ts",
        "time_key_format": "%Y/%m/%d %H:%M:%S",
        "time_key_nanos": True,
    },
    "time_key_format_plain": {"time_key_format": "%s"},
    "include_tag_key": {"include_tag_key": True},
    "include_tag_key_custom": {"include_tag_key": True, "tag_key": "the_tag"},
    "generate_id": {"generate_id": True},
    "id_key": {"id_key": "rid"},
    "replace_dots": {"replace_dots": True, "include_tag_key": True, "tag_key": "t.k"},
    "suppress_type_name": {"suppress_type_name": True, "type": "ignored"},
    "type_and_index": {"type": "mytype", "index": "myindex"},
    "write_index": {"write_operation": "index"},
    "write_update": {"write_operation": "update", "id_key": "rid"},
    "write_upsert": {"write_operation": "upsert", "generate_id": True},
    "write_create_generate_id_and_id_key": {"generate_id": True, "id_key": "rid"},
}

#: the "current time" of current_time_index: another day than every record
NOW = 1710000000.75  # 2024-03-09

HTTP_CASES: dict[str, dict[str, Any]] = {
    **{
        f"{fmt}_{date_format}": {"fmt": fmt, "date_key": "date", "date_format": date_format}
        for fmt in ("json", "json_lines")
        for date_format in ("double", "epoch", "epoch_ms", "iso8601", "java_sql_timestamp")
    },
    "json_stream": {"fmt": "json_stream", "date_key": "date", "date_format": "double"},
    "json_lines_no_date": {"fmt": "json_lines", "date_key": None, "date_format": "double"},
    "json_no_date": {"fmt": "json", "date_key": None, "date_format": "epoch"},
    "json_lines_custom_key": {"fmt": "json_lines", "date_key": "@t", "date_format": "iso8601"},
    "json_lines_key_in_record": {"fmt": "json_lines", "date_key": "msg", "date_format": "epoch"},
    "gelf": {"fmt": "gelf"},
    "gelf_keys": {
        "fmt": "gelf",
        "gelf": {
            "timestamp": "ts",
            "host": "hst",
            "short_message": "message",
            "full_message": "msg",
            "level": "lvl",
        },
    },
}


def es_body(case: str) -> str:
    chunk, _, case = case.partition("/")
    settings = EsSettings(**ES_CASES[case])
    items = encode_items(CHUNKS[chunk], "app.log", settings, NOW)
    return b"".join(items).decode("utf-8", "surrogateescape")


def http_body(case: str) -> str:
    chunk, _, case = case.partition("/")
    spec = dict(HTTP_CASES[case])
    gelf = GelfKeys(**spec.pop("gelf", {}))
    body = encode_body(
        CHUNKS[chunk],
        "app.log",
        spec["fmt"],
        date_key=spec.get("date_key"),
        date_format=spec.get("date_format", "double"),
        gelf=gelf,
    )
    return body.decode("utf-8", "surrogateescape")


def decoded(text: str) -> Any:
    """JSON objects as pair lists: key order, int/float/bool and duplicates all count."""
    hook = list
    if text.startswith("["):
        return ["array", json.loads(text, object_pairs_hook=hook)]
    assert text.endswith("\n")
    return [json.loads(line, object_pairs_hook=hook) for line in text.split("\n")[:-1]]


def _load() -> dict[str, dict[str, str]]:
    if not GOLDEN.exists():
        return {"es": {}, "http": {}}
    data: dict[str, dict[str, str]] = json.loads(GOLDEN.read_text())
    return data


ES_KEYS = sorted(f"{chunk}/{case}" for chunk in CHUNKS for case in ES_CASES)
HTTP_KEYS = sorted(f"{chunk}/{case}" for chunk in CHUNKS for case in HTTP_CASES)


def _regold() -> None:
    out = {
        "es": {case: es_body(case) for case in ES_KEYS},
        "http": {case: http_body(case) for case in HTTP_KEYS},
    }
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, ensure_ascii=True) + "\n")


if os.environ.get("RELAYBIT_REGOLD"):
    _regold()

GOLDENS = _load()


@pytest.mark.parametrize("case", ES_KEYS)
def test_es_bulk_golden(case: str) -> None:
    assert decoded(es_body(case)) == decoded(GOLDENS["es"][case])


@pytest.mark.parametrize("case", HTTP_KEYS)
def test_http_format_golden(case: str) -> None:
    assert decoded(http_body(case)) == decoded(GOLDENS["http"][case])


def test_msgpack_format_is_the_chunk() -> None:
    body = encode_body(CHUNK, "t", "msgpack", date_key="date", date_format="double")
    assert body == CHUNK


def test_the_clean_chunk_takes_the_fast_path_and_the_mixed_one_does_not() -> None:
    assert fastjson.decode_maps(CLEAN) is not None
    assert fastjson.decode_maps(CHUNK) is None


def test_goldens_cover_every_case() -> None:
    assert set(GOLDENS["es"]) == set(ES_KEYS)
    assert set(GOLDENS["http"]) == set(HTTP_KEYS)


def test_a_wrong_entry_count_is_counted_again() -> None:
    entries = fastjson.decode_maps(CLEAN)
    assert entries is not None and len(entries) == 9
    for count in (0, 3, 9, 100):
        assert fastjson.decode_maps(CLEAN, count) == entries
    assert fastjson.decode_maps(CHUNK, 12) is None
    assert fastjson.decode_maps(CHUNK, 5) is None


def test_the_collector_is_on_again_after_a_body() -> None:
    import gc

    assert gc.isenabled()
    http_body("clean/json_lines_double")
    es_body("clean/default")
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("inside")
    assert gc.isenabled()


async def test_an_encoder_process_writes_every_golden_body_as_the_agent_does(
    running_pool: EncoderPool,
) -> None:
    """The bodies of every es and http case, written in an encoder process, are byte for
    byte those written here (gzip compared decompressed: its header holds a time)."""
    for case in ES_KEYS:
        chunk, _, name = case.partition("/")
        settings = EsSettings(**ES_CASES[name])
        data = CHUNKS[chunk]
        count = fastjson.count_entries(data)
        here = BulkEncoder(settings).encode_chunk(data, count, "app.log", NOW)
        there = await running_pool.encode(
            ("es", settings),
            functools.partial(BulkEncoder, settings),
            data,
            count,
            "app.log",
            NOW,
        )
        assert there == here, case
    for case in HTTP_KEYS:
        chunk, _, name = case.partition("/")
        spec = dict(HTTP_CASES[name])
        gelf = GelfKeys(**spec.pop("gelf", {}))
        for gzipped in (False, True):
            factory = functools.partial(
                BodyEncoder,
                spec["fmt"],
                date_key=spec.get("date_key"),
                date_format=spec.get("date_format", "double"),
                gelf=gelf,
                gzip=gzipped,
            )
            data = CHUNKS[chunk]
            here_body, _ = factory().encode_chunk(data, 12, "app.log", NOW)
            done = await running_pool.encode((case, gzipped), factory, data, 12, "app.log", NOW)
            assert done is not None, case
            there_body, count = done
            assert count == 12
            if gzipped:
                here_body, there_body = gzip.decompress(here_body), gzip.decompress(there_body)
            assert there_body == here_body, (case, gzipped)
    assert running_pool.status()["in_agent"] == 0
