"""The ``grep`` filter: keep or drop records by regular expressions on their values.

``Regex KEY REGEX`` keeps records whose KEY matches; ``Exclude KEY REGEX`` drops
records whose KEY matches.  KEY is a top-level name or a record accessor
(``$kubernetes['labels']['app']``).  ``Logical_Op`` (Fluent Bit 2.1+):
``legacy`` (default) keeps a record when every Regex matches and no Exclude
does; ``AND``/``OR`` combine rules of one kind (mixing Regex and Exclude is an
error there, as in Fluent Bit).  Expressions are searched (Onigmo
``onig_search``), so ``^``/``$`` anchor when you need it.  A missing key never
matches.  Numbers and booleans are matched through their text (``200``,
``true``); Fluent Bit matches strings only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers.regex import compile_onigmo
from relaybit.plugins.base import FilterPlugin, PluginContext
from relaybit.record_accessor import RecordAccessor, value_as_text


@dataclass(frozen=True)
class GrepRule:
    exclude: bool
    accessor: RecordAccessor
    regex: re.Pattern[str]

    def matches(self, record: Any) -> bool:
        text = value_as_text(self.accessor.get(record))
        return text is not None and self.regex.search(text) is not None


class GrepFilter(FilterPlugin):
    """Keep records matching every Regex and no Exclude (or AND/OR with Logical_Op)."""

    description = "Select or exclude records by regular expressions on their values"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option(
                "regex", "str", None, "KEY REGEX: keep records whose KEY matches", multiple=True
            ),
            Option(
                "exclude", "str", None, "KEY REGEX: drop records whose KEY matches", multiple=True
            ),
            Option(
                "logical_op",
                "str",
                "legacy",
                "How rules combine: legacy, AND or OR",
                choices=("legacy", "and", "or"),
            ),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        self.rules: list[GrepRule] = []
        for name, value, origin in opts.in_order():
            if name not in ("regex", "exclude"):
                continue
            parts = str(value).strip().split(None, 1)
            if len(parts) != 2:
                raise ConfigError(
                    f"expected 'KEY REGEX', got {value!r}", origin, section=section, key=name
                )
            try:
                accessor = RecordAccessor(parts[0])
                regex = compile_onigmo(parts[1])
            except (ValueError, re.error) as exc:
                raise ConfigError(str(exc), origin, section=section, key=name) from None
            self.rules.append(GrepRule(name == "exclude", accessor, regex))
        self.logical_op = opts.str("logical_op").lower() or "legacy"
        kinds = {rule.exclude for rule in self.rules}
        if self.logical_op != "legacy" and len(kinds) > 1:
            raise ConfigError(
                "Logical_Op AND/OR cannot combine Regex and Exclude rules; use two grep filters",
                opts.origin("logical_op"),
                section=section,
                key="logical_op",
            )
        self.excluding = kinds == {True}

        self.filter = self._compile()  # type: ignore[method-assign,assignment]

    def keep(self, record: Any) -> bool:
        """True when the record passes the rules."""
        if not self.rules:
            return True
        if self.logical_op == "legacy":
            return all(rule.matches(record) != rule.exclude for rule in self.rules)
        combine = all if self.logical_op == "and" else any
        hit = combine(rule.matches(record) for rule in self.rules)
        return not hit if self.excluding else hit

    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        return [entry for entry in entries if self.keep(entry[1])]

    def _compile(self) -> Callable[[str, list[Any]], list[Any]]:
        """The filter function, prebuilt for the rules: one top-level Regex or
        Exclude (the usual case) is tested inline; otherwise one call per record."""
        rules = self.rules
        if len(rules) != 1 or len(rules[0].accessor.path) != 1:
            keep = self.keep
            return lambda tag, entries: [entry for entry in entries if keep(entry[1])]
        rule = rules[0]
        key = rule.accessor.path[0]
        search = rule.regex.search

        def hit(value: Any) -> bool:
            text = value_as_text(value)
            return text is not None and search(text) is not None

        if rule.exclude:
            return lambda tag, entries: [
                e
                for e in entries
                if ((r := e[1]).__class__ is not dict and not isinstance(r, dict))
                or not (
                    search(v) is not None
                    if (v := r.get(key)).__class__ is str
                    else v is not None and hit(v)
                )
            ]
        return lambda tag, entries: [
            e
            for e in entries
            if ((r := e[1]).__class__ is dict or isinstance(r, dict))
            and (
                search(v) is not None
                if (v := r.get(key)).__class__ is str
                else v is not None and hit(v)
            )
        ]

    def __repr__(self) -> str:
        return f"<GrepFilter {self.ctx.name} rules={len(self.rules)} op={self.logical_op}>"
