"""Multiline: join the lines of one record (stack traces, split container logs).

Public API: :class:`MultilineParser` (a definition), :class:`MultilineStream`
(the per-file state machine: ``feed``/``flush_due``/``flush``),
:func:`build_multiline_parsers` (``[MULTILINE_PARSER]`` sections),
:func:`lookup_multiline` (a ``multiline.parser`` value -> parsers, built-ins
included), :data:`BUILTIN_MULTILINE` and :data:`MULTILINE_PARSER_OPTIONS`.
"""

from relaybit.multiline.builtin import BUILTIN_MULTILINE
from relaybit.multiline.definition import DEFAULT_FLUSH_TIMEOUT, MultilineParser
from relaybit.multiline.options import (
    MULTILINE_PARSER_OPTIONS,
    build_multiline_parser,
    build_multiline_parsers,
    lookup_multiline,
)
from relaybit.multiline.rules import Rule, RuleError, RuleSet, parse_rule_line
from relaybit.multiline.stream import MAX_RECORD_BYTES, MultilineStream, Record

__all__ = [
    "BUILTIN_MULTILINE",
    "DEFAULT_FLUSH_TIMEOUT",
    "MAX_RECORD_BYTES",
    "MULTILINE_PARSER_OPTIONS",
    "MultilineParser",
    "MultilineStream",
    "Record",
    "Rule",
    "RuleError",
    "RuleSet",
    "build_multiline_parser",
    "build_multiline_parsers",
    "lookup_multiline",
    "parse_rule_line",
]
