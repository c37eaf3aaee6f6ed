"""Parsers (``[PARSER]`` sections): json, regex, logfmt and ltsv.

Public API: :func:`build_parsers` (sections -> ``{name: Parser}``),
:data:`PARSER_OPTIONS`, :data:`BUILTIN_PARSERS`, :func:`with_builtins`, the
:class:`Parser` protocol and :class:`TimeFormat`.
"""

from relaybit.parsers.base import Parser, ParseResult
from relaybit.parsers.builtin import BUILTIN_PARSERS, with_builtins
from relaybit.parsers.options import PARSER_OPTIONS, build_parser, build_parsers
from relaybit.parsers.regex import compile_onigmo
from relaybit.parsers.timefmt import TimeFormat, parse_offset

__all__ = [
    "BUILTIN_PARSERS",
    "PARSER_OPTIONS",
    "ParseResult",
    "Parser",
    "TimeFormat",
    "build_parser",
    "build_parsers",
    "compile_onigmo",
    "parse_offset",
    "with_builtins",
]
