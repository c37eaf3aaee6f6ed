"""Record accessor keys as Fluent Bit writes them."""

from __future__ import annotations

import pytest

from relaybit.record_accessor import RecordAccessor, parse_accessor, value_as_text

RECORD = {
    "log": "x",
    "kubernetes": {"labels": {"app": "web", "app.kubernetes.io/name": "shop"}},
    "items": [{"id": 1}, {"id": 2}],
}


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("log", ("log",)),
        ("$log", ("log",)),
        ("$kubernetes['labels']['app']", ("kubernetes", "labels", "app")),
        (
            '$kubernetes["labels"]["app.kubernetes.io/name"]',
            ("kubernetes", "labels", "app.kubernetes.io/name"),
        ),
        ("$items[1]['id']", ("items", 1, "id")),
        ("Mem.used", ("Mem.used",)),
    ],
)
def test_parse(pattern: str, path: tuple[object, ...]) -> None:
    assert parse_accessor(pattern) == path


@pytest.mark.parametrize("bad", ["", "$", "$a[", "$a['b'", "$a[b]", "$a['b']x"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_accessor(bad)


def test_get_and_exists() -> None:
    assert RecordAccessor("$kubernetes['labels']['app']").get(RECORD) == "web"
    assert RecordAccessor("$items[-1]['id']").get(RECORD) == 2
    assert RecordAccessor("$items[5]").get(RECORD, "none") == "none"
    assert RecordAccessor("$log['sub']").get(RECORD) is None  # a string has no keys
    assert RecordAccessor("$kubernetes").exists(RECORD)
    assert not RecordAccessor("$nope").exists(RECORD)


def test_value_as_text() -> None:
    assert [value_as_text(v) for v in ("a", 3, 1.5, True, False, b"b", None, {}, [])] == [
        "a",
        "3",
        "1.5",
        "true",
        "false",
        "b",
        None,
        None,
        None,
    ]
