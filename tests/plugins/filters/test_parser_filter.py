"""parser filter: Key_Name, several parsers, Reserve_Data, Preserve_Key, time."""

from __future__ import annotations

import calendar
from typing import Any

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.parsers import build_parsers, with_builtins
from relaybit.plugins.filters.parser import ParserFilter

NGINX = (
    '10.0.0.7 - - [10/Oct/2023:13:55:36 +0000] "GET /api/v1/items HTTP/1.1" 200 512 '
    '"-" "kube-probe/1.29"'
)


def parsers() -> dict[str, Any]:
    origin = Origin("/etc/relaybit/parsers.conf", 1)
    props = {"name": "kv", "format": "logfmt", "types": "took:integer"}
    user = build_parsers(
        [
            Section(
                kind="parser", properties=tuple(RawProperty(k, v, origin) for k, v in props.items())
            )
        ]
    )
    return with_builtins(user)


def test_parse_nginx_line_sets_time_and_replaces_record(make_filter: Any) -> None:
    f = make_filter(ParserFilter, ("Key_Name", "log"), ("Parser", "nginx"), parsers=parsers())
    [(time, record)] = f.filter("web", [(EventTime(1), {"log": NGINX, "stream": "stdout"})])
    assert time == EventTime(calendar.timegm((2023, 10, 10, 13, 55, 36)))
    assert record["path"] == "/api/v1/items" and record["code"] == "200"
    assert "stream" not in record and "log" not in record


def test_first_matching_parser_wins(make_filter: Any) -> None:
    f = make_filter(
        ParserFilter,
        ("Key_Name", "log"),
        ("Parser", "json"),
        ("Parser", "kv"),
        parsers=parsers(),
    )
    out = f.filter(
        "t",
        [
            (1, {"log": '{"user": "ann"}'}),
            (2, {"log": "user=bob took=31"}),
        ],
    )
    assert out == [(1, {"user": "ann"}), (2, {"user": "bob", "took": 31})]


def test_reserve_data_and_preserve_key(make_filter: Any) -> None:
    record = {"stream": "stderr", "log": "level=warn msg=slow", "level": "original"}
    reserve = make_filter(
        ParserFilter,
        ("Key_Name", "log"),
        ("Parser", "kv"),
        ("Reserve_Data", "on"),
        parsers=parsers(),
    )
    [(_, out)] = reserve.filter("t", [(1, record)])
    assert out == {"level": "warn", "msg": "slow", "stream": "stderr"}  # parsed value wins
    both = make_filter(
        ParserFilter,
        ("Key_Name", "log"),
        ("Parser", "kv"),
        ("Reserve_Data", "on"),
        ("Preserve_Key", "on"),
        parsers=parsers(),
    )
    [(_, out2)] = both.filter("t", [(1, record)])
    assert list(out2) == ["level", "msg", "stream", "log"]
    only_key = make_filter(
        ParserFilter,
        ("Key_Name", "log"),
        ("Parser", "kv"),
        ("Preserve_Key", "on"),
        parsers=parsers(),
    )
    [(_, out3)] = only_key.filter("t", [(1, record)])
    assert out3 == {"level": "warn", "msg": "slow", "log": "level=warn msg=slow"}


def test_unparsable_missing_or_non_text_pass_unchanged(make_filter: Any) -> None:
    f = make_filter(ParserFilter, ("Key_Name", "log"), ("Parser", "json"), parsers=parsers())
    entries = [(1, {"log": "not json"}), (2, {"other": "x"}), (3, {"log": 42}), (4, "raw")]
    assert f.filter("t", list(entries)) == entries


def test_builtins_without_service_parsers(make_filter: Any) -> None:
    f = make_filter(ParserFilter, ("Key_Name", "message"), ("Parser", "syslog-rfc5424"))
    line = "<34>1 2024-01-01T00:00:00.5Z host app 1 ID1 - started"
    [(time, record)] = f.filter("t", [(0, {"message": line})])
    assert time == EventTime(calendar.timegm((2024, 1, 1, 0, 0, 0)), 500_000_000)
    assert record["message"] == "started"


def test_unknown_parser_names_its_line(make_filter: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_filter(
            ParserFilter,
            ("Key_Name", "log"),
            ("Parser", "json"),
            ("Parser", "nginxx"),
            parsers=parsers(),
        )
    text = str(info.value)
    assert "agent.conf:4:" in text and "unknown parser 'nginxx'" in text and "nginx" in text


@pytest.mark.parametrize(
    ("props", "text"),
    [((("Parser", "json"),), "key_name"), ((("Key_Name", "log"),), "at least one parser")],
)
def test_required_keys(make_filter: Any, props: Any, text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        make_filter(ParserFilter, *props)
