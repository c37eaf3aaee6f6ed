"""The ``parser`` filter: parse one field of each record with named parsers.

``Key_Name`` names the field, ``Parser`` (repeatable) the parsers to try in
order; the first that matches wins.  The parsed fields become the record;
``Reserve_Data`` keeps the other original fields after them (a parsed field
wins over an original one of the same name) and ``Preserve_Key`` keeps the
parsed field itself.  A parsed time replaces the record's time.  A record whose
field is missing, not text, or matched by no parser passes unchanged.

Parsers come from ``ctx.service["parsers"]`` (name -> Parser, built by the
agent with :func:`relaybit.parsers.build_parsers` over the built-ins); when the
agent gives none, the built-in parsers are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from relaybit.codec.records import with_time
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers import BUILTIN_PARSERS, Parser
from relaybit.plugins.base import FilterPlugin, PluginContext
from relaybit.record_accessor import value_as_text


class ParserFilter(FilterPlugin):
    """Parse ``key_name`` with the first matching parser."""

    description = "Parse a field of each record with named parsers"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option("key_name", "str", None, "Field to parse (required)"),
            Option("parser", "str", None, "Parser name; repeat to try several", multiple=True),
            Option("reserve_data", "bool", False, "Keep the record's other fields"),
            Option("preserve_key", "bool", False, "Keep the parsed field itself"),
            Option("unescape_key", "bool", False, "Deprecated; accepted and ignored"),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        written = opts.in_order()
        somewhere = opts.section_origin()
        self.key_name = opts.opt_str("key_name") or ""
        if not self.key_name:
            raise ConfigError("missing 'key_name': the field to parse", somewhere, section=section)
        if not opts.list("parser"):
            raise ConfigError(
                "missing 'parser': at least one parser name", somewhere, section=section
            )
        available: Mapping[str, Parser] = ctx.service.get("parsers") or BUILTIN_PARSERS
        self.parsers: list[Parser] = []
        for name, value, origin in written:
            if name != "parser":
                continue
            parser = available.get(str(value).strip())
            if parser is None:
                known = ", ".join(sorted(available)) or "none"
                raise ConfigError(
                    f"unknown parser '{value}' (defined parsers: {known})",
                    origin,
                    section=section,
                    key="parser",
                )
            self.parsers.append(parser)
        self.reserve_data = opts.bool("reserve_data")
        self.preserve_key = opts.bool("preserve_key")
        if opts.is_set("unescape_key"):
            ctx.logger.warning("'unescape_key' is deprecated and has no effect")

    def parse_entry(self, time: Any, record: Any) -> tuple[Any, Any]:
        """The entry after parsing (unchanged when nothing matched); ``time`` is the
        entry's head: a parsed time replaces its time and keeps its metadata."""
        if not isinstance(record, dict) or self.key_name not in record:
            return time, record
        raw = record[self.key_name]
        text = raw if isinstance(raw, str) else None
        if text is None and isinstance(raw, bytes):
            text = value_as_text(raw)
        if text is None:
            return time, record
        for parser in self.parsers:
            result = parser.parse(text)
            if result is None:
                continue
            when, parsed = result
            out: dict[Any, Any] = dict(parsed)
            if self.reserve_data:
                for key, value in record.items():
                    if key in out or (key == self.key_name and not self.preserve_key):
                        continue
                    out[key] = value
            elif self.preserve_key and self.key_name not in out:
                out[self.key_name] = raw
            return (time if when is None else with_time(time, when)), out
        return time, record

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return [self.parse_entry(time, record) for time, record in entries]

    def __repr__(self) -> str:
        names = [p.name for p in self.parsers]
        return f"<ParserFilter {self.ctx.name} key={self.key_name!r} parsers={names}>"
