"""The logfmt parser (one regular expression) against the character loop it replaced."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.parsers.base import ParserSettings, unescape
from relaybit.parsers.logfmt import LogfmtParser


def _ident(ch: str) -> bool:
    return ch > " " and ch not in '="'


def reference(text: str, no_bare_keys: bool) -> dict[str, Any] | None:
    """The character loop of the first logfmt parser, kept as the specification."""
    out: dict[str, Any] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and not _ident(text[i]):
            if text[i] == "\n":
                n = i
                break
            i += 1
        if i >= n:
            break
        start = i
        while i < n and _ident(text[i]):
            i += 1
        key = text[start:i]
        value: Any = True
        has_equal = i < n and text[i] == "="
        if has_equal:
            i += 1
            if i < n and text[i] == '"':
                i += 1
                vstart, escaped = i, False
                while i < n and text[i] != '"':
                    if text[i] == "\\":
                        escaped = True
                        i += 1
                    i += 1
                raw = text[vstart : min(i, n)]
                value = unescape(raw) if escaped else raw
                i += 1
            else:
                vstart = i
                while i < n and _ident(text[i]):
                    i += 1
                if i > vstart:
                    value = text[vstart:i]
        elif no_bare_keys:
            return None
        out[key] = value
    return out or None


PIECES = ["a", "key", "é", "=", '"', "\\", " ", "\t", "\n", "\x00", "\udcff", "x=1", 'q="a b"']
lines = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)


@settings(max_examples=2000, deadline=None)
@given(lines, st.booleans())
def test_the_grammar_equals_the_reference(text: str, no_bare_keys: bool) -> None:
    parser = LogfmtParser(ParserSettings(name="l"), no_bare_keys=no_bare_keys)
    assert parser.fields(text) == reference(text, no_bare_keys)


@given(st.text(max_size=40), st.booleans())
def test_any_text_equals_the_reference(text: str, no_bare_keys: bool) -> None:
    parser = LogfmtParser(ParserSettings(name="l"), no_bare_keys=no_bare_keys)
    assert parser.fields(text) == reference(text, no_bare_keys)
