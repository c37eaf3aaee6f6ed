"""nest: nest and lift on Kubernetes-like records, prefixes, config errors."""

from __future__ import annotations

from typing import Any

import pytest

from relaybit.errors import ConfigError
from relaybit.plugins.filters.nest import NestFilter

K8S: dict[str, Any] = {
    "log": "GET / 200",
    "kubernetes": {"pod_name": "web-1", "namespace_name": "prod", "labels": {"app": "web"}},
}


def one(f: NestFilter, record: dict[str, Any]) -> Any:
    return f.filter("kube.x", [(1, record)])[0][1]


def test_lift_with_add_prefix(make_filter: Any) -> None:
    f = make_filter(
        NestFilter,
        ("Operation", "lift"),
        ("Nested_under", "kubernetes"),
        ("Add_prefix", "k8s_"),
    )
    assert one(f, K8S) == {
        "log": "GET / 200",
        "k8s_pod_name": "web-1",
        "k8s_namespace_name": "prod",
        "k8s_labels": {"app": "web"},
    }


def test_nest_with_wildcards_and_remove_prefix(make_filter: Any) -> None:
    f = make_filter(
        NestFilter,
        ("Operation", "nest"),
        ("Wildcard", "k8s_*"),
        ("Wildcard", "host"),
        ("Nest_under", "kubernetes"),
        ("Remove_prefix", "k8s_"),
    )
    record = {"log": "x", "k8s_pod": "web-1", "host": "n1", "hostname": "keep", "k8s": 1}
    assert one(f, record) == {
        "log": "x",
        "hostname": "keep",
        "k8s": 1,
        "kubernetes": {"pod": "web-1", "host": "n1"},
    }


def test_nest_then_lift_round_trips(make_filter: Any) -> None:
    nest = make_filter(NestFilter, ("Operation", "nest"), ("Wildcard", "a*"), ("Nest_under", "m"))
    lift = make_filter(NestFilter, ("Operation", "lift"), ("Nested_under", "m"))
    record = {"a1": 1, "a2": [1, 2], "b": "x"}
    nested = one(nest, record)
    assert nested == {"b": "x", "m": {"a1": 1, "a2": [1, 2]}}
    assert one(lift, nested) == record


def test_records_without_the_keys_pass_unchanged(make_filter: Any) -> None:
    nest = make_filter(NestFilter, ("Operation", "nest"), ("Wildcard", "zz*"), ("Nest_under", "m"))
    lift = make_filter(NestFilter, ("Operation", "lift"), ("Nested_under", "m"))
    record = {"log": "x", "m": "not a map"}
    assert one(nest, record) is record
    assert one(lift, record) is record  # not a map: left alone
    assert lift.warned_not_map


def test_lifted_keys_win_over_existing_ones(make_filter: Any) -> None:
    lift = make_filter(NestFilter, ("Operation", "lift"), ("Nested_under", "m"))
    assert one(lift, {"a": "top", "m": {"a": "inner"}}) == {"a": "inner"}


def test_exact_wildcard_matches_only_the_whole_key(make_filter: Any) -> None:
    f = make_filter(NestFilter, ("Operation", "nest"), ("Wildcard", "ab"), ("Nest_under", "m"))
    assert one(f, {"ab": 1, "abc": 2}) == {"abc": 2, "m": {"ab": 1}}


@pytest.mark.parametrize(
    ("props", "message", "line"),
    [
        ((("Nest_under", "m"),), "missing 'operation'", 2),
        ((("Operation", "nest"), ("Wildcard", "a*")), "needs 'nest_under'", 2),
        ((("Operation", "nest"), ("Nest_under", "m")), "needs at least one 'wildcard'", 2),
        ((("Operation", "lift"),), "needs 'nested_under'", 2),
        (
            (
                ("Operation", "lift"),
                ("Nested_under", "m"),
                ("Add_prefix", "a"),
                ("Remove_prefix", "b"),
            ),
            "exclusive",
            5,
        ),
        ((("Operation", "move"),), "operation", 2),
    ],
)
def test_config_errors_name_the_line(
    make_filter: Any, props: tuple[tuple[str, str], ...], message: str, line: int
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make_filter(NestFilter, *props)
    assert f"agent.conf:{line}" in str(info.value)


def test_prefix_with_is_the_old_name_of_add_prefix(make_filter: Any) -> None:
    f = make_filter(NestFilter, ("Operation", "lift"), ("Nested_under", "m"), ("Prefix_with", "p_"))
    assert one(f, {"m": {"a": 1}}) == {"p_a": 1}
