"""content_modifier: every action and conversion with Fluent Bit's rules, body and metadata."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import PROCESSOR_COMMON, PluginContext
from relaybit.plugins.processors.content_modifier import ContentModifier

T = EventTime(1_700_000_000, 1)


def make(**props: str) -> ContentModifier:
    raw = [RawProperty(k, v, Origin("p.yaml", i + 2)) for i, (k, v) in enumerate(props.items())]
    opts = (PROCESSOR_COMMON + ContentModifier.options).resolve(raw, section="processor")
    return ContentModifier(PluginContext(name="content_modifier.0", plugin="x", options=opts))


def run(record: Any, **props: str) -> Any:
    [(head, out)] = make(**props).filter("t", [(T, record)])
    assert head == T
    return out


REC = {"a": "1", "b": "two", "c": 3}


def test_insert_adds_only_a_missing_key() -> None:
    assert run(dict(REC), action="insert", key="d", value="x") == {**REC, "d": "x"}
    assert run(dict(REC), action="insert", key="a", value="x") == REC


def test_upsert_sets_and_moves_the_key_to_the_end() -> None:
    out = run(dict(REC), action="upsert", key="a", value="x")
    assert list(out.items()) == [("b", "two"), ("c", 3), ("a", "x")]


def test_delete_and_rename_in_place() -> None:
    assert run(dict(REC), action="delete", key="b") == {"a": "1", "c": 3}
    assert run(dict(REC), action="delete", key="zz") == REC
    out = run(dict(REC), action="rename", key="b", value="B")
    assert list(out.items()) == [("a", "1"), ("B", "two"), ("c", 3)]


def test_the_input_record_is_not_changed() -> None:
    record = dict(REC)
    run(record, action="upsert", key="a", value="x")
    assert record == REC


@pytest.mark.parametrize(
    ("value", "text"),
    [("alice", "alice"), (42, "42"), (1.5, "1.5"), (True, "true"), (None, "null")],
)
def test_hash_is_the_sha256_of_the_text(value: Any, text: str) -> None:
    out = run({"k": value}, action="hash", key="k")
    assert out == {"k": hashlib.sha256(text.encode()).hexdigest()}


def test_hash_keeps_an_empty_text_and_a_map() -> None:
    assert run({"k": ""}, action="hash", key="k") == {"k": ""}
    assert run({"k": {"x": 1}}, action="hash", key="k") == {"k": {"x": 1}}


def test_extract_adds_the_named_groups() -> None:
    out = run(
        {"log": "user=bob id=7", "id": "old"},
        action="extract",
        key="log",
        pattern=r"user=(?<user>\w+) id=(?<id>\d+)",
    )
    assert list(out.items()) == [("log", "user=bob id=7"), ("user", "bob"), ("id", "7")]
    f = make(action="extract", key="log", pattern=r"(?<n>\d+)")
    assert f.filter("t", [(T, {"log": "none"})]) == [(T, {"log": "none"})]
    assert f.status() == {"unchanged": 1}


@pytest.mark.parametrize(
    ("value", "wanted", "expected"),
    [
        ("42", "int", 42),
        ("-7", "int", -7),
        ("", "int", 0),
        ("4294967295", "int", 4294967295),
        ("4294967296", "int", "4294967296"),  # out of range: unchanged
        ("-2147483649", "int", "-2147483649"),
        ("12abc", "int", "12abc"),
        (2.5, "int", 3),
        (-2.5, "int", -3),
        (None, "int", 0),
        (True, "int", 1),
        ("3.25", "double", 3.25),
        ("12abc", "double", 12.0),
        ("abc", "double", "abc"),
        (7, "double", 7.0),
        (0.1, "string", "0.10000000000000001"),
        (7, "string", "7"),
        (None, "string", "null"),
        (False, "string", "false"),
        ("TRUE", "boolean", True),
        ("yes", "boolean", False),
        (0, "boolean", False),
        (2.0, "boolean", True),
        ([1], "string", [1]),
    ],
)
def test_convert_follows_fluent_bit(value: Any, wanted: str, expected: Any) -> None:
    out = run({"k": value, "z": 1}, action="convert", key="k", converted_type=wanted)
    assert out["k"] == expected and type(out["k"]) is type(expected)
    if out["k"] is not value and out["k"] != value:
        assert list(out) == ["z", "k"]  # a converted key moves to the end


def test_metadata_context() -> None:
    f = make(action="insert", key="src", value="agent", context="metadata")
    out = f.filter("t", [([T, {"a": 1}], {"r": 1}), (T, {"r": 2})])
    assert out == [([T, {"a": 1, "src": "agent"}], {"r": 1}), ([T, {"src": "agent"}], {"r": 2})]
    d = make(action="delete", key="a", context="attributes")
    assert d.filter("t", [([T, {"a": 1}], {"r": 1}), (T, {"r": 2})]) == [
        ([T, {}], {"r": 1}),
        (T, {"r": 2}),
    ]


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({}, "no 'action' defined"),
        ({"action": "insert", "key": "k"}, "value is required"),
        ({"action": "convert", "key": "k"}, "converted_type is required"),
        (
            {"action": "convert", "key": "k", "converted_type": "float"},
            "unsupported converted_type",
        ),
        ({"action": "delete", "key": "k", "context": "nowhere"}, "unknown logs context"),
        ({"action": "extract", "key": "k", "pattern": "(?<a"}, "invalid regex pattern"),
    ],
)
def test_config_errors(props: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(**props)
    assert needle in str(info.value)
    assert "p.yaml:" in str(info.value) or not props
