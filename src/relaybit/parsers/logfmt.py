"""The ``logfmt`` and ``ltsv`` parsers, following Fluent Bit's grammar.

logfmt (https://brandur.org/logfmt): ``key=value key="quoted \\"value\\"" bare``.
A key is any run of bytes above space except ``=`` and ``"``; a bare key (no
``=``) or ``key=`` gets ``true``, ``key=""`` gets an empty string; parsing stops
at the first newline.  ``logfmt_no_bare_keys`` rejects lines with bare keys.
ltsv: ``label:value`` fields separated by tabs.
"""

from __future__ import annotations

from typing import Any

from relaybit.parsers.base import BaseParser, ParserSettings, unescape


def _ident(ch: str) -> bool:
    return ch > " " and ch not in '="'


class LogfmtParser(BaseParser):
    format = "logfmt"

    def __init__(self, settings: ParserSettings, *, no_bare_keys: bool = False) -> None:
        super().__init__(settings)
        self.no_bare_keys = no_bare_keys

    def fields(self, text: str) -> dict[str, Any] | None:
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
                    i += 1  # the closing quote
                else:
                    vstart = i
                    while i < n and _ident(text[i]):
                        i += 1
                    if i > vstart:
                        value = text[vstart:i]
            elif self.no_bare_keys:
                return None
            out[key] = value
        return out or None


class LtsvParser(BaseParser):
    format = "ltsv"

    def fields(self, text: str) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for part in text.rstrip("\r\n").split("\t"):
            label, sep, value = part.partition(":")
            if sep and label:
                out[label] = value
        return out or None
