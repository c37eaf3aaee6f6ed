"""The ``logfmt`` and ``ltsv`` parsers, following Fluent Bit's grammar.

logfmt (https://brandur.org/logfmt): ``key=value key="quoted \\"value\\"" bare``.
A key is any run of bytes above space except ``=`` and ``"``; a bare key (no
``=``) or ``key=`` gets ``true``, ``key=""`` gets an empty string; parsing stops
at the first newline.  ``logfmt_no_bare_keys`` rejects lines with bare keys.
ltsv: ``label:value`` fields separated by tabs.
"""

from __future__ import annotations

import re
from typing import Any

from relaybit.parsers.base import BaseParser, ParserSettings, unescape

#: one key with its value, after the separators before it (or the newline that ends
#: the text).  A key is a run of characters above space but '=' and '"'; ``key="..."``
#: takes a quoted value (``\\`` escapes the next character; an unterminated quote runs
#: to the end).  Groups: newline, key, '=', opening quote, quoted value, bare value.
_TOKEN = re.compile(
    r"""
    [\x00-\x09\x0b-\x20="]*
    (?: (\n)
      | ([^\x00-\x20="]+)
        (?: (=) (?: (")((?:[^"\\]|\\[\s\S]|\\\Z)*)(?:"|\Z) | ([^\x00-\x20="]*) ) )?
    )
    """,
    re.VERBOSE,
)


class LogfmtParser(BaseParser):
    format = "logfmt"

    def __init__(self, settings: ParserSettings, *, no_bare_keys: bool = False) -> None:
        super().__init__(settings)
        self.no_bare_keys = no_bare_keys

    def fields(self, text: str) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for newline, key, equal, quote, quoted, value in _TOKEN.findall(text):
            if newline:
                break
            if not equal:
                if self.no_bare_keys:
                    return None
                out[key] = True
            elif quote:
                out[key] = unescape(quoted) if "\\" in quoted else quoted
            else:
                out[key] = value or True
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
