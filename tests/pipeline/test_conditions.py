"""Conditional routes: which records go to which route (pure)."""

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, iter_entries, pack_entry
from relaybit.config.routes import InputRoute, RouteCondition, RouteOutput, RouteRule
from relaybit.pipeline.conditions import RouteSplitter, compile_rule

T = EventTime(1700000000, 5)


def rule(field: str, op: str, value: str = "", *values: str, context: str = "body") -> RouteRule:
    return RouteRule(field=field, op=op, value=value, values=values, context=context)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("r", "record", "expected"),
    [
        (rule("$level", "eq", "error"), {"level": "error"}, True),
        (rule("$level", "eq", "error"), {"level": "info"}, False),
        (rule("$level", "neq", "error"), {"level": "info"}, True),
        (rule("$level", "neq", "error"), {}, False),  # a missing field fails every op
        (rule("$code", "eq", "500"), {"code": 500}, True),  # compared as text
        (rule("$ok", "eq", "true"), {"ok": True}, True),
        (rule("$code", "gt", "499"), {"code": 500}, True),
        (rule("$code", "gt", "499"), {"code": "503"}, True),
        (rule("$code", "lt", "499"), {"code": "n/a"}, False),  # not a number: no match
        (rule("$code", "gte", "500"), {"code": 500.0}, True),
        (rule("$code", "lte", "1.5"), {"code": 1.5}, True),
        (rule("$msg", "regex", "^time"), {"msg": "timeout x"}, True),
        (rule("$msg", "not_regex", "^time"), {"msg": "timeout x"}, False),
        (rule("$k['sub'][1]", "eq", "b"), {"k": {"sub": ["a", "b"]}}, True),
        (rule("$env", "in", "", "prod", "stage"), {"env": "stage"}, True),
        (rule("$env", "not_in", "", "prod", "stage"), {"env": "dev"}, True),
        (rule("$env", "not_in", "", "prod"), {}, False),
        (rule("$m", "eq", "x"), {"m": {"a": 1}}, False),  # a map is not text
    ],
)
def test_rule_ops(r: RouteRule, record: dict[str, object], expected: bool) -> None:
    assert compile_rule(r)(record, {}) is expected


def test_rule_reads_metadata_with_context_metadata() -> None:
    r = rule("$source", "eq", "k8s", context="metadata")
    assert compile_rule(r)({"source": "no"}, {"source": "k8s"}) is True
    assert compile_rule(r)({"source": "k8s"}, {}) is False


def route(name: str, condition: RouteCondition | None = None) -> InputRoute:
    return InputRoute(name=name, outputs=(RouteOutput(name="o"),), condition=condition)


def entries(*records: dict[str, object]) -> bytes:
    return b"".join(pack_entry(T, r) for r in records)


def decoded(data: bytes) -> list[object]:
    return [r for _t, r in iter_entries(data)]


def test_split_conditional_default_and_everything_routes() -> None:
    errors = route("errors", RouteCondition(rules=(rule("$level", "eq", "error"),)))
    slow = route(
        "slow",
        RouteCondition(op="or", rules=(rule("$ms", "gt", "1000"), rule("$slow", "eq", "true"))),
    )
    rest = route("rest", RouteCondition(default=True))
    everything = route("all")
    splitter = RouteSplitter([errors, slow, rest, everything])
    data = entries(
        {"level": "error", "ms": 5},
        {"level": "info", "ms": 2000},
        {"level": "error", "slow": True},  # takes two routes
        {"level": "info"},
    )
    shares = {s.route: s for s in splitter.split(data, 4)}
    assert shares["all"].data is data and shares["all"].records == 4
    assert decoded(shares["errors"].data) == [
        {"level": "error", "ms": 5},
        {"level": "error", "slow": True},
    ]
    assert decoded(shares["slow"].data) == [
        {"level": "info", "ms": 2000},
        {"level": "error", "slow": True},
    ]
    assert decoded(shares["rest"].data) == [{"level": "info"}]
    assert splitter.unrouted == 0


def test_records_no_route_takes_are_counted() -> None:
    splitter = RouteSplitter([route("e", RouteCondition(rules=(rule("$level", "eq", "error"),)))])
    shares = splitter.split(entries({"level": "info"}, {"level": "error"}, {}), 3)
    assert [(s.route, s.records) for s in shares] == [("e", 1)]
    assert splitter.unrouted == 2


def test_shares_are_the_emitted_bytes_unchanged_with_metadata() -> None:
    meta = msgpack.packb([[T.to_ext(), {"source": "k8s"}], {"b": b"\xff raw"}], use_bin_type=True)
    plain = b"\x92\x01\x81\xa1n\xa2\xff\xfe"  # [1, {"n": <invalid UTF-8 str>}]
    data = plain + meta
    k8s = RouteCondition(rules=(rule("$source", "eq", "k8s", context="metadata"),))
    splitter = RouteSplitter([route("k8s", k8s), route("other", RouteCondition(default=True))])
    shares = {s.route: s.data for s in splitter.split(data, 2)}
    assert shares == {"k8s": meta, "other": plain}
