"""Conditional routes at run time: which records of an emit go to which route. Pure.

An input with ``routes`` (:mod:`relaybit.config.routes`) has its emitted
entries split here: each entry is decoded once to test the conditions, and
each route's share is the original entry bytes joined (nothing re-encoded, so
what an output receives is byte for byte what the input emitted).

A rule reads its field with a record accessor, from the record (``context:
body``) or from the entry's metadata (``context: metadata``), and compares it
as text (``eq``, ``neq``, ``in``, ``not_in``, ``regex``, ``not_regex``) or as a
number (``gt``, ``lt``, ``gte``, ``lte``), as Fluent Bit's router does.  A
missing field fails the rule whatever its op; a number rule on a value that is
not a number fails too (Fluent Bit reads it as 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from relaybit.codec.msgpack import ext_hook
from relaybit.config.routes import (
    InputRoute,
    RouteCondition,
    RouteRule,
)
from relaybit.record_accessor import RecordAccessor, value_as_text

Test = Callable[[Any, Any], bool]  # (record, metadata) -> matched


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = value_as_text(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def compile_rule(rule: RouteRule) -> Test:
    """A rule as a function of ``(record, metadata)``."""
    accessor = RecordAccessor(rule.field)
    missing = object()
    use_metadata = rule.context == "metadata"
    op = rule.op

    def read(record: Any, metadata: Any) -> Any:
        return accessor.get(metadata if use_metadata else record, missing)

    if op in ("gt", "lt", "gte", "lte"):
        limit = float(rule.value)
        compare: Callable[[float], bool] = {
            "gt": lambda v: v > limit,
            "lt": lambda v: v < limit,
            "gte": lambda v: v >= limit,
            "lte": lambda v: v <= limit,
        }[op]

        def numeric(record: Any, metadata: Any) -> bool:
            value = read(record, metadata)
            number = None if value is missing else _number(value)
            return number is not None and compare(number)

        return numeric

    if op in ("regex", "not_regex"):
        pattern = re.compile(rule.value)
        want = op == "regex"

        def regex(record: Any, metadata: Any) -> bool:
            value = read(record, metadata)
            text = None if value is missing else value_as_text(value)
            return text is not None and (pattern.search(text) is not None) is want

        return regex

    if op in ("in", "not_in"):
        choices = frozenset(rule.values)
        inside = op == "in"

        def member(record: Any, metadata: Any) -> bool:
            value = read(record, metadata)
            text = None if value is missing else value_as_text(value)
            return text is not None and (text in choices) is inside

        return member

    expected = rule.value
    equal = op == "eq"

    def compare_text(record: Any, metadata: Any) -> bool:
        value = read(record, metadata)
        text = None if value is missing else value_as_text(value)
        return text is not None and (text == expected) is equal

    return compare_text


def compile_condition(condition: RouteCondition) -> Test:
    """A condition (its rules joined by and / or) as one test."""
    tests = [compile_rule(rule) for rule in condition.rules]
    if condition.op == "or":
        return lambda record, metadata: any(t(record, metadata) for t in tests)
    return lambda record, metadata: all(t(record, metadata) for t in tests)


@dataclass(frozen=True, slots=True)
class RouteShare:
    """What one route takes of an emit: entry bytes joined, and their count."""

    route: str
    data: bytes
    records: int


class RouteSplitter:
    """Splits emitted entries among an input's routes."""

    __slots__ = ("_conditional", "_default", "_everything", "unrouted")

    def __init__(self, routes: Sequence[InputRoute]) -> None:
        self._everything = [r.name for r in routes if r.condition is None]
        self._conditional = [
            (r.name, compile_condition(r.condition))
            for r in routes
            if r.condition is not None and not r.condition.default
        ]
        self._default = [r.name for r in routes if r.is_default]
        self.unrouted = 0  #: records no route took (counted, not delivered)

    def split(self, data: bytes, records: int) -> list[RouteShare]:
        """Each route's share of ``data`` (routes that take nothing are left out)."""
        shares = [RouteShare(name, data, records) for name in self._everything]
        if not self._conditional and not self._default:
            return shares
        parts: dict[str, list[bytes]] = {}
        unrouted = 0
        unpacker = msgpack.Unpacker(
            ext_hook=ext_hook, raw=False, unicode_errors="surrogateescape", strict_map_key=False
        )
        unpacker.feed(data)
        start = 0
        for item in unpacker:
            end = unpacker.tell()
            record, metadata = _record_and_metadata(item)
            taken = False
            for name, test in self._conditional:
                if test(record, metadata):
                    parts.setdefault(name, []).append(data[start:end])
                    taken = True
            if not taken:
                if self._default:
                    for name in self._default:
                        parts.setdefault(name, []).append(data[start:end])
                elif not self._everything:
                    unrouted += 1
            start = end
        self.unrouted += unrouted
        for name, pieces in parts.items():
            shares.append(RouteShare(name, b"".join(pieces), len(pieces)))
        return shares

    def __repr__(self) -> str:
        names = [*self._everything, *(n for n, _ in self._conditional), *self._default]
        return f"<RouteSplitter routes={names} unrouted={self.unrouted}>"


def _record_and_metadata(item: Any) -> tuple[Any, Any]:
    if not isinstance(item, list | tuple) or len(item) < 2:
        return None, None
    head, record = item[0], item[1]
    metadata: Any = {}
    if isinstance(head, list | tuple) and len(head) > 1 and isinstance(head[1], dict):
        metadata = head[1]
    return record, metadata
