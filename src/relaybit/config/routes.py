"""Fluent Bit 5's conditional routing on inputs (YAML ``routes:``), as typed values. Pure.

::

    pipeline:
      inputs:
        - name: tail
          routes:
            logs:
              - name: errors                      # unique per input
                condition:
                  op: and                         # and (default) | or
                  rules:
                    - {field: $level, op: eq, value: error}
                    - {field: $code, op: in, value: [500, 503]}
                to:
                  outputs: [es_errors]            # an output's alias, name (es.0) or plugin
              - name: rest
                condition: {default: true}        # what no conditional route took
                to: {outputs: [archive]}
              - name: everything                  # no condition: every record
                to: {outputs: [counter]}

Each conditional route takes the records its condition matches (a record may
match several); the default route takes those no conditional route took; a
route without condition takes every record.  An input with ``routes`` sends
its records only where its routes say: outputs' ``match`` does not apply to
it.  Records that no route takes are counted as unrouted and logged once.

Where Fluent Bit skips a route it cannot compile (an unknown ``op``, ``gt`` on
a value that is not a number, an output that does not exist) and so drops its
records, relaybit refuses the configuration with the file and line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from relaybit.config.origin import Origin
from relaybit.errors import ConfigError
from relaybit.record_accessor import parse_accessor

#: rule operators (Fluent Bit's flb_router_condition.c)
STRING_OPS = ("eq", "neq")
NUMERIC_OPS = ("gt", "lt", "gte", "lte")
REGEX_OPS = ("regex", "not_regex")
LIST_OPS = ("in", "not_in")
RULE_OPS = STRING_OPS + NUMERIC_OPS + REGEX_OPS + LIST_OPS
#: where a rule's field is read: the record (body) or its metadata
CONTEXTS = {
    "body": "body",
    "record": "body",
    "message": "body",
    "record_body": "body",
    "metadata": "metadata",
    "record_metadata": "metadata",
    "attributes": "metadata",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    """One comparison: ``field`` (a record accessor) ``op`` ``value``/``values``."""

    field: str
    op: str
    value: str = ""
    values: tuple[str, ...] = ()
    context: Literal["body", "metadata"] = "body"
    origin: Origin | None = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteCondition:
    """``rules`` joined by ``op`` (and / or), or the ``default`` route."""

    op: Literal["and", "or"] = "and"
    rules: tuple[RouteRule, ...] = ()
    default: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteOutput:
    """An output a route sends to: its alias, instance name or plugin name."""

    name: str
    fallback: str | None = None
    origin: Origin | None = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRoute:
    """One entry of an input's ``routes: logs:`` list."""

    name: str
    outputs: tuple[RouteOutput, ...]
    condition: RouteCondition | None = None
    origin: Origin | None = dataclasses.field(default=None, compare=False)

    @property
    def is_default(self) -> bool:
        return self.condition is not None and self.condition.default


def check_rule(rule: RouteRule, section: str) -> None:
    """Refuse a rule Fluent Bit would silently never match (ConfigError with file:line)."""

    def fail(message: str) -> ConfigError:
        return ConfigError(message, rule.origin, section=section, key="routes")

    if rule.op not in RULE_OPS:
        raise fail(f"unknown rule op '{rule.op}'; expected one of {', '.join(RULE_OPS)}")
    try:
        parse_accessor(rule.field)
    except ValueError as exc:
        raise fail(f"field: {exc}") from None
    if rule.op in LIST_OPS:
        if not rule.values:
            raise fail(f"op '{rule.op}' needs 'value' as a list of values")
        return
    if rule.values:
        raise fail(f"op '{rule.op}' compares one value; a list is only for in / not_in")
    if rule.op in NUMERIC_OPS:
        try:
            float(rule.value)
        except ValueError:
            raise fail(f"op '{rule.op}' needs a number, got {rule.value!r}") from None
    elif rule.op in REGEX_OPS:
        try:
            re.compile(rule.value)
        except re.error as exc:
            raise fail(f"invalid regex {rule.value!r}: {exc}") from None
