"""Fluent Bit tag matching (``match`` and ``match_regex``). Pure.

``*`` in a ``match`` pattern matches any run of characters, dots included
(``flb_router_match``): ``app.*`` matches ``app.web`` and ``app.web.1``,
``*.log`` matches ``file.apache.log``, ``*`` alone matches every tag.  Every
other character matches itself, case-sensitively.  ``match_regex`` wins over
``match`` when both are set and, like Fluent Bit (Onigmo ``onig_search``),
matches when the expression is found anywhere in the tag; anchor it with
``^...$`` for a whole-tag match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

TagMatcher = Callable[[str], bool]


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(part) for part in pattern.split("*"))
    return re.compile(".*".join(parts), re.DOTALL)


def match_tag(pattern: str, tag: str) -> bool:
    """True when ``tag`` matches the Fluent Bit ``match`` pattern."""
    if pattern == "*":
        return True
    if "*" not in pattern:
        return pattern == tag
    return _wildcard(pattern).fullmatch(tag) is not None


def _never(tag: str) -> bool:
    return False


def compile_match(match: str | None, match_regex: str | None = None) -> TagMatcher:
    """A predicate over tags for a ``match`` / ``match_regex`` pair.

    ``match_regex`` wins when set (searched, as Fluent Bit does); with neither
    set nothing matches (Fluent Bit warns and routes nothing).  Raises
    :class:`re.error` for a bad expression; callers turn it into a
    ConfigError with the key's origin.
    """
    if match_regex:
        from relaybit.parsers.regex import compile_onigmo

        regex = compile_onigmo(match_regex)

        def by_regex(tag: str) -> bool:
            return regex.search(tag) is not None

        return by_regex
    if match is None or match == "":
        return _never
    pattern = match.strip()
    if pattern == "*":
        return lambda tag: True
    if "*" not in pattern:
        return lambda tag: tag == pattern
    compiled = _wildcard(pattern)
    return lambda tag: compiled.fullmatch(tag) is not None


@lru_cache(maxsize=4096)
def cached_match(match: str | None, match_regex: str | None, tag: str) -> bool:
    """:func:`compile_match` with a cache for the hot path (few patterns, few tags)."""
    return _compiled(match, match_regex)(tag)


@lru_cache(maxsize=256)
def _compiled(match: str | None, match_regex: str | None) -> TagMatcher:
    return compile_match(match, match_regex)
