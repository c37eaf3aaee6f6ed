"""modify: every rule, its order, conditions, and config errors."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.errors import ConfigError
from relaybit.plugins.filters.modify import ModifyFilter, split_quoted

BASE: dict[str, Any] = {
    "Mem.total": 1016024,
    "Mem.used": 716672,
    "Mem.free": 299352,
    "Swap.total": 2064380,
    "Swap.used": 32656,
    "Swap.free": 2031724,
}


def run(make_filter: Any, record: dict[str, Any], *props: tuple[str, str]) -> Any:
    f = make_filter(ModifyFilter, *props)
    before = dict(record)
    [(time, out)] = f.filter("mem.local", [(7, record)])
    assert time == 7
    assert record == before  # the input record is never changed in place
    return out


def test_fluent_bit_docs_example(make_filter: Any) -> None:
    out = run(
        make_filter,
        dict(BASE),
        ("Add", "Service1 SOMEVALUE"),
        ("Add", "Service3 SOMEVALUE3"),
        ("Add", "Mem.total2 TOTALMEM2"),
        ("Rename", "Mem.free MEMFREE"),
        ("Rename", "Mem.used MEMUSED"),
        ("Rename", "Swap.total SWAPTOTAL"),
        ("Add", "Mem.total TOTALMEM"),
    )
    assert list(out) == [
        "Mem.total",
        "MEMUSED",
        "MEMFREE",
        "SWAPTOTAL",
        "Swap.used",
        "Swap.free",
        "Service1",
        "Service3",
        "Mem.total2",
    ]
    assert out["Mem.total"] == 1016024  # Add never overwrites
    assert out["Service1"] == "SOMEVALUE"


def test_set_replaces_and_moves_to_end(make_filter: Any) -> None:
    out = run(make_filter, {"a": 1, "b": 2}, ("Set", "a new"), ("Set", "c 3"))
    assert list(out.items()) == [("b", 2), ("a", "new"), ("c", "3")]


def test_quoted_values_keep_spaces(make_filter: Any) -> None:
    out = run(make_filter, {}, ("Set", 'message "hello world"'), ("Add", "'key with space' v"))
    assert out == {"message": "hello world", "key with space": "v"}


def test_rules_apply_in_written_order(make_filter: Any) -> None:
    # rename then copy the renamed key: works only in this order
    out = run(make_filter, {"msg": "x"}, ("Rename", "msg message"), ("Copy", "message log"))
    assert out == {"message": "x", "log": "x"}
    out2 = run(make_filter, {"msg": "x"}, ("Copy", "message log"), ("Rename", "msg message"))
    assert out2 == {"message": "x"}


def test_rename_and_hard_rename(make_filter: Any) -> None:
    record = {"a": 1, "b": 2, "c": 3}
    assert run(make_filter, record, ("Rename", "a c")) == record  # target exists: untouched
    assert list(run(make_filter, record, ("Hard_rename", "a c")).items()) == [("c", 1), ("b", 2)]
    assert list(run(make_filter, record, ("Rename", "b z")).items()) == [
        ("a", 1),
        ("z", 2),
        ("c", 3),
    ]
    assert run(make_filter, record, ("Rename", "missing x")) == record


def test_copy_and_hard_copy(make_filter: Any) -> None:
    record = {"a": 1, "b": 2}
    assert list(run(make_filter, record, ("Copy", "a a2")).items()) == [
        ("a", 1),
        ("a2", 1),
        ("b", 2),
    ]
    assert run(make_filter, record, ("Copy", "a b")) == record
    assert list(run(make_filter, record, ("Hard_copy", "a b")).items()) == [("a", 1), ("b", 1)]
    assert run(make_filter, record, ("Copy", "zz yy")) == record


def test_remove_variants(make_filter: Any) -> None:
    assert list(run(make_filter, dict(BASE), ("Remove", "Mem.used"))) == [
        k for k in BASE if k != "Mem.used"
    ]
    assert list(run(make_filter, dict(BASE), ("Remove_wildcard", "Mem."))) == [
        "Swap.total",
        "Swap.used",
        "Swap.free",
    ]
    assert list(run(make_filter, dict(BASE), ("Remove_wildcard", "Mem.*"))) == [
        "Swap.total",
        "Swap.used",
        "Swap.free",
    ]
    assert list(run(make_filter, dict(BASE), ("Remove_wildcard", "*.free"))) == [
        "Mem.total",
        "Mem.used",
        "Swap.total",
        "Swap.used",
    ]
    assert list(run(make_filter, dict(BASE), ("Remove_regex", r"^(Mem|Swap)\.(used|free)$"))) == [
        "Mem.total",
        "Swap.total",
    ]


def test_move_to_start_and_end(make_filter: Any) -> None:
    out = run(make_filter, dict(BASE), ("Move_to_start", "Swap."))
    assert list(out)[:3] == ["Swap.total", "Swap.used", "Swap.free"]
    out = run(make_filter, dict(BASE), ("Move_to_end", "Mem.*"))
    assert list(out)[-3:] == ["Mem.total", "Mem.used", "Mem.free"]


@pytest.mark.parametrize(
    ("condition", "applies"),
    [
        ("Key_exists Mem.used", True),
        ("Key_exists nope", False),
        ("Key_does_not_exist nope", True),
        ("Key_does_not_exist Mem.used", False),
        (r"A_key_matches ^Swap\.", True),
        ("A_key_matches ^Disk", False),
        ("No_key_matches ^Disk", True),
        ("Key_value_equals Mem.used 716672", True),  # numbers compare by their text
        ("Key_value_equals Mem.used 1", False),
        ("Key_value_does_not_equal Mem.used 1", True),
        ("Key_value_does_not_equal nope 1", False),  # needs the key
        (r"Key_value_matches Mem.free ^\d+$", True),
        ("Key_value_does_not_match Mem.free ^\\d+$", False),
        (r"Matching_keys_have_matching_values \.total$ ^\d{7}$", True),
        (r"Matching_keys_have_matching_values \.used$ ^\d{6}$", False),
        (r"Matching_keys_do_not_have_matching_values \.used$ ^\d{6}$", True),
    ],
)
def test_conditions(make_filter: Any, condition: str, applies: bool) -> None:
    out = run(make_filter, dict(BASE), ("Condition", condition), ("Set", "touched yes"))
    assert ("touched" in out) is applies


def test_all_conditions_must_hold(make_filter: Any) -> None:
    props = (("Condition", "Key_exists Mem.used"), ("Condition", "Key_exists nope"), ("Add", "x y"))
    assert "x" not in run(make_filter, dict(BASE), *props)


def test_condition_on_nested_key(make_filter: Any) -> None:
    record = {"kubernetes": {"namespace_name": "prod"}, "log": "x"}
    props = (
        ("Condition", "Key_value_equals $kubernetes['namespace_name'] prod"),
        ("Set", "env production"),
    )
    assert run(make_filter, record, *props)["env"] == "production"
    other = {"kubernetes": {"namespace_name": "dev"}, "log": "x"}
    assert "env" not in run(make_filter, other, *props)


def test_non_map_records_pass(make_filter: Any) -> None:
    f = make_filter(ModifyFilter, ("Set", "a b"))
    assert f.filter("t", [(1, "raw")]) == [(1, "raw")]


def test_split_quoted() -> None:
    assert split_quoted('a "b c" \'d e\' "x\\"y"') == ["a", "b c", "d e", 'x"y']
    with pytest.raises(ValueError):
        split_quoted('a "b')


@pytest.mark.parametrize(
    ("props", "line", "text"),
    [
        ((("Set", "message hello world"),), 2, "quote a value"),
        ((("Add", "lonely"),), 2, "KEY VALUE"),
        ((("Remove", "a b"),), 2, "one KEY"),
        ((("Set", "a b"), ("Condition", "Key_is_big a")), 3, "unknown condition"),
        ((("Condition", "Key_value_equals a"),), 2, "TYPE KEY VALUE"),
        ((("Condition", "A_key_matches ("),), 2, "regular expression"),
        ((("Remove_regex", "[a-"),), 2, "regular expression"),
        ((("Set", 'a "open'),), 2, "unterminated"),
        ((("Sett", "a b"),), 2, "did you mean 'set'"),
    ],
)
def test_config_errors(make_filter: Any, props: Any, line: int, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_filter(ModifyFilter, *props)
    assert f"agent.conf:{line}:" in str(info.value)
    assert text in str(info.value)
