"""Decode_Field(_As) decoders and rules, as Fluent Bit 5.1.1 runs them (values seen from it)."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.parsers.decoders import (
    Decoder,
    apply_decoders,
    decode_json,
    group_rules,
    mysql_unquote,
    unescape_escaped,
    unescape_utf8,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('caf\\u00e9 \\ud83d\\ude00 \\x41\\101 \\q \\/ \\"', 'café 😀 AA q / "'),
        ("\\u12 \\udc00 \\ud83dx \\U0001F600 tail\\", "\ufffd \ufffd \ufffdx 😀 tail\\"),
        ("a\\tb\\nc\\\\d", "a\tb\nc\\d"),
        ("no escapes", "no escapes"),
        ("stops at\x00 a NUL", "stops at"),
    ],
)
def test_escaped_utf8(text: str, expected: str) -> None:
    assert unescape_utf8(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("line\\nbreak\\ttab", "line\nbreak\ttab"),
        ('\\u00e9 \\"', 'u00e9 "'),  # unknown escapes lose their backslash
        ("a\\\\b", "a\\b"),
        ("end\\", "end\x00"),  # Fluent Bit copies the NUL after the text
    ],
)
def test_escaped(text: str, expected: str) -> None:
    assert unescape_escaped(text) == expected


def test_mysql_quoted_and_json() -> None:
    assert mysql_unquote("'it\\'s \\Z'") == "it's \x1a"
    assert mysql_unquote("plain") == "plain"
    assert mysql_unquote('"x\\q"') == "x\\q"
    assert decode_json('  {"a": 1}') == {"a": 1}
    for not_a_map in ("[1, 2]", "1", "{bad", '"text"'):
        assert not isinstance(decode_json(not_a_map), dict)


def run(rules: list[Decoder], record: dict[str, Any]) -> dict[str, Any]:
    apply_decoders(group_rules(rules), record)
    return record


def test_decode_field_keeps_the_value_and_appends_the_last_keys_map() -> None:
    rules = [Decoder(False, "json", "a"), Decoder(False, "json", "b")]
    got = run(rules, {"a": '{"x": 1}', "b": '{"y": 2}', "c": 3})
    assert list(got.items()) == [("a", '{"x": 1}'), ("b", '{"y": 2}'), ("c", 3), ("y", 2)]
    # the last key with a Decode_Field rule decides, even when it does not decode
    got = run(rules, {"a": '{"x": 1}', "b": "not json"})
    assert got == {"a": '{"x": 1}', "b": "not json"}


def test_actions_decide_what_runs_after_a_failure_or_a_success() -> None:
    stop = [Decoder(True, "json", "k"), Decoder(True, "escaped", "k")]
    assert run(stop, {"k": "a\\tb"}) == {"k": "a\\tb"}  # json failed without action: stop
    try_next = [Decoder(True, "json", "k", "try_next"), Decoder(True, "escaped", "k")]
    assert run(try_next, {"k": "a\\tb"}) == {"k": "a\tb"}
    chained = [Decoder(True, "escaped", "k", "do_next"), Decoder(True, "json", "k")]
    assert run(chained, {"k": '{\\"n\\": 1}'}) == {"k": {"n": 1}}  # json reads the unescaped text
    assert run(chained, {"k": 5}) == {"k": 5}  # only text is decoded
