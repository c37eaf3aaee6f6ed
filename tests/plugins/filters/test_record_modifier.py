"""record_modifier: Record, Remove_key, Allowlist_key (and Whitelist_key), UUID_key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from relaybit.errors import ConfigError
from relaybit.plugins.filters.record_modifier import RecordModifierFilter

CPU = {"cpu_p": 1.5, "user_p": 0.5, "system_p": 1.0, "cpu0.p_cpu": 2.0, "Hostname": "db-1"}


def one(f: RecordModifierFilter, record: dict[str, Any]) -> Any:
    [(time, out)] = f.filter("cpu.local", [(5, record)])
    assert time == 5
    return out


def test_record_appends_values_with_spaces(make_filter: Any) -> None:
    f = make_filter(
        RecordModifierFilter, ("Record", "hostname web-7"), ("Record", "product Awesome Store 2")
    )
    out = one(f, {"log": "x", "hostname": "old"})
    assert list(out.items()) == [
        ("log", "x"),
        ("hostname", "web-7"),
        ("product", "Awesome Store 2"),
    ]


def test_remove_key_case_insensitive_and_prefix(make_filter: Any) -> None:
    f = make_filter(RecordModifierFilter, ("Remove_key", "hostname"), ("Remove_key", "cpu0.*"))
    assert one(f, dict(CPU)) == {"cpu_p": 1.5, "user_p": 0.5, "system_p": 1.0}


@pytest.mark.parametrize("key", ["Allowlist_key", "Whitelist_key"])
def test_allowlist(make_filter: Any, key: str) -> None:
    f = make_filter(RecordModifierFilter, (key, "cpu_p"), (key, "user*"), ("Record", "src agent"))
    assert one(f, dict(CPU)) == {"cpu_p": 1.5, "user_p": 0.5, "src": "agent"}


def test_uuid_key_is_unique_per_record(make_filter: Any) -> None:
    f = make_filter(RecordModifierFilter, ("UUID_key", "event_id"))
    out = f.filter("t", [(1, {"a": 1}), (2, {"a": 2})])
    ids = [r["event_id"] for _, r in out]
    assert len(set(ids)) == 2
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_non_map_passes(make_filter: Any) -> None:
    f = make_filter(RecordModifierFilter, ("Record", "a b"))
    assert f.filter("t", [(1, [1, 2])]) == [(1, [1, 2])]


def test_remove_and_allowlist_are_exclusive(make_filter: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_filter(RecordModifierFilter, ("Remove_key", "a"), ("Allowlist_key", "b"))
    assert "agent.conf:3:" in str(info.value) and "exclusive" in str(info.value)


def test_record_needs_key_and_value(make_filter: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_filter(RecordModifierFilter, ("Record", "a b"), ("Record", "lonely"))
    assert "agent.conf:3:" in str(info.value) and "KEY VALUE" in str(info.value)
