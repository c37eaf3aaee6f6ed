"""The ``regex`` parser and the Onigmo (Ruby) -> Python regular expression bridge.

Fluent Bit compiles expressions with Onigmo in Ruby syntax and *searches*
(``onig_search``): an unanchored expression may match anywhere in the line.
:func:`compile_onigmo` converts what differs in Python's ``re``: named groups
``(?<name>...)`` -> ``(?P<name>...)``, backreferences ``\\k<name>``, ``\\h``
(hex digit), ``\\z``/``\\Z`` anchors, and the ``/expr/imx`` wrapper Fluent Bit
accepts (Ruby's ``m`` means "dot matches newline", Python's DOTALL).
"""

from __future__ import annotations

import re
from typing import Any

from relaybit.parsers.base import BaseParser, ParserSettings

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WRAPPED = re.compile(r"^/(.*)/([imx]*)$", re.DOTALL)


def to_python_regex(pattern: str) -> tuple[str, int]:
    """Translate an Onigmo (Ruby syntax) expression; returns (pattern, re flags)."""
    flags = 0
    wrapped = _WRAPPED.match(pattern)
    if wrapped:
        pattern = wrapped.group(1)
        for opt in wrapped.group(2):
            flags |= {"i": re.IGNORECASE, "m": re.DOTALL, "x": re.VERBOSE}[opt]
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "h":
                out.append("0-9a-fA-F" if in_class else "[0-9a-fA-F]")
            elif nxt == "H" and not in_class:
                out.append("[^0-9a-fA-F]")
            elif nxt == "z" and not in_class:
                out.append(r"\Z")
            elif nxt == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")
            elif nxt == "k" and not in_class and pattern.startswith("<", i + 2):
                end = pattern.find(">", i + 3)
                if end == -1:
                    raise ValueError(r"unterminated \k<name> backreference")
                out.append(f"(?P={pattern[i + 3 : end]})")
                i = end + 1
                continue
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # a ']' right after '[' or '[^' is a literal
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and _NAME.match(pattern, i + 3):
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out), flags


def compile_onigmo(pattern: str) -> re.Pattern[str]:
    """Compile a Fluent Bit (Onigmo) expression with Python's ``re``; re.error if invalid."""
    text, flags = to_python_regex(pattern)
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise re.error(f"{exc.msg} (in {pattern!r})") from None


class RegexParser(BaseParser):
    """Named groups of the first match become the record's keys, in pattern order."""

    format = "regex"

    def __init__(self, settings: ParserSettings, regex: str, *, skip_empty: bool = True) -> None:
        super().__init__(settings)
        self.pattern = regex
        self.regex = compile_onigmo(regex)
        self.skip_empty = skip_empty
        if not self.regex.groupindex:
            raise ValueError(
                "the expression has no named group (?<name>...): it would parse nothing"
            )

    def fields(self, text: str) -> dict[str, Any] | None:
        m = self.regex.search(text)
        if m is None:
            return None
        found = m.groupdict()
        values = found.values()
        if self.skip_empty:  # None (group not taken) and "" are left out
            if None in values or "" in values:
                return {name: value for name, value in found.items() if value}
            return found
        if None in values:
            return {name: value for name, value in found.items() if value is not None}
        return found
