"""grep: Regex/Exclude on real records, nested keys, Logical_Op."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.errors import ConfigError
from relaybit.plugins.filters.grep import GrepFilter

RECORDS: list[dict[str, Any]] = [
    {"log": "aaa", "level": "info", "status": 200, "kubernetes": {"labels": {"app": "web"}}},
    {"log": "aab", "level": "error", "status": 503, "kubernetes": {"labels": {"app": "api"}}},
    {"log": "bbb", "level": "debug", "status": 404, "kubernetes": {"labels": {"app": "web"}}},
    {"log": "ccc", "level": "info", "status": 200},
]


def logs(f: GrepFilter) -> list[str]:
    return [r["log"] for _, r in f.filter("app", [(1, r) for r in RECORDS])]


def test_regex_keeps_matching(make_filter: Any) -> None:
    assert logs(make_filter(GrepFilter, ("Regex", "log aa"))) == ["aaa", "aab"]


def test_exclude_drops_matching(make_filter: Any) -> None:
    assert logs(make_filter(GrepFilter, ("Exclude", "level ^debug$"))) == ["aaa", "aab", "ccc"]


def test_legacy_is_and_of_regex_and_none_of_exclude(make_filter: Any) -> None:
    f = make_filter(
        GrepFilter, ("Regex", "level ^(info|error)$"), ("Regex", "log ^a"), ("Exclude", "log b$")
    )
    assert logs(f) == ["aaa"]


def test_nested_keys_with_record_accessor(make_filter: Any) -> None:
    f = make_filter(GrepFilter, ("Regex", "$kubernetes['labels']['app'] ^web$"))
    assert logs(f) == ["aaa", "bbb"]  # the record without kubernetes never matches


def test_numbers_match_through_their_text(make_filter: Any) -> None:
    assert logs(make_filter(GrepFilter, ("Exclude", "status ^5"))) == ["aaa", "bbb", "ccc"]


def test_regex_with_spaces_in_the_expression(make_filter: Any) -> None:
    f = make_filter(GrepFilter, ("Regex", "msg ^user (alice|bob) logged in$"))
    kept = f.filter("t", [(1, {"msg": "user bob logged in"}), (2, {"msg": "user eve logged in"})])
    assert kept == [(1, {"msg": "user bob logged in"})]


def test_logical_op_or(make_filter: Any) -> None:
    f = make_filter(GrepFilter, ("Regex", "log ^c"), ("Regex", "level error"), ("Logical_Op", "OR"))
    assert logs(f) == ["aab", "ccc"]


def test_logical_op_and_exclude_drops_only_when_all_match(make_filter: Any) -> None:
    f = make_filter(
        GrepFilter, ("Exclude", "level info"), ("Exclude", "log ^a"), ("Logical_Op", "and")
    )
    assert logs(f) == ["aab", "bbb", "ccc"]


def test_logical_op_or_exclude(make_filter: Any) -> None:
    f = make_filter(
        GrepFilter, ("Exclude", "level debug"), ("Exclude", "log ^c"), ("logical_op", "or")
    )
    assert logs(f) == ["aaa", "aab"]


def test_no_rules_keeps_everything(make_filter: Any) -> None:
    assert logs(make_filter(GrepFilter)) == ["aaa", "aab", "bbb", "ccc"]


@pytest.mark.parametrize(
    ("props", "line", "key", "text"),
    [
        ((("Regex", "onlykey"),), 2, "regex", "KEY REGEX"),
        ((("Regex", "log ok"), ("Exclude", "log (")), 3, "exclude", "missing )"),
        ((("Regex", "$a[ x"),), 2, "regex", "record accessor"),
        (
            (("Regex", "log a"), ("Exclude", "log b"), ("Logical_Op", "AND")),
            4,
            "logical_op",
            "cannot",
        ),
        ((("Logical_Op", "XOR"),), 2, "logical_op", "legacy, and, or"),
    ],
)
def test_config_errors_name_the_line(
    make_filter: Any, props: tuple[tuple[str, str], ...], line: int, key: str, text: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_filter(GrepFilter, *props)
    message = str(info.value)
    assert f"agent.conf:{line}:" in message
    assert key in message
    assert text in message
