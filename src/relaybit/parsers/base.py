"""What every parser shares: the Parser protocol, time, types and decoders.

A parser turns one line of text into ``(time, record)``; ``time`` is None when
the line carries none (the caller keeps the record's own time).  ``None``
instead of a pair means the text did not match.

Differences from Fluent Bit, on purpose: a time that does not follow
``Time_Format`` leaves the record without a parsed time but keeps the time
field, whatever ``Time_Keep`` says (Fluent Bit drops the field or the whole
record); a ``Types`` cast that fails keeps the original string (Fluent Bit
stores 0).  Nothing the line said is lost.
"""

from __future__ import annotations

import functools
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from relaybit.codec.msgpack import EventTime
from relaybit.codec.text import has_surrogates, replace_lone_surrogates
from relaybit.parsers.decoders import Decoder, apply_decoders, group_rules
from relaybit.parsers.timefmt import TimeFormat

log = logging.getLogger("relaybit.parsers")

ParseResult = tuple[EventTime | None, dict[str, Any]]

TYPE_NAMES = ("string", "integer", "float", "bool", "hex")
DECODERS = ("json", "escaped", "escaped_utf8", "mysql_quoted")
DECODER_ACTIONS = ("do_next", "try_next")


@runtime_checkable
class Parser(Protocol):
    """A named parser: ``parse(text)`` -> ``(time or None, record)`` or None (no match)."""

    name: str

    def parse(self, text: str) -> ParseResult | None: ...


@dataclass(frozen=True)
class ParserSettings:
    """Options common to every format."""

    name: str
    time_key: str = "time"
    time_format: TimeFormat | None = None
    time_keep: bool = False
    types: dict[str, str] = field(default_factory=dict)
    decoders: tuple[Decoder, ...] = ()


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[\\\"'/abfnrtv0])")
_SIMPLE = {
    "\\": "\\",
    '"': '"',
    "'": "'",
    "/": "/",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "0": "\0",
}


def unescape(text: str) -> str:
    """Backslash escapes (``\\n``, ``\\"``, ``\\u00e9`` ...) -> characters; unknown ones stay.

    An escaped surrogate pair (``\\ud83d\\ude00``) is its character; a lone one
    (``\\ud800``) is U+FFFD, as Fluent Bit's logfmt and the json parser write it
    (msgpack refuses lone surrogates in text).
    """

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] in "ux":
            return chr(int(code[1:], 16))
        return _SIMPLE[code]

    out = _ESCAPE.sub(one, text)
    if "\\u" not in text or not has_surrogates(out):
        return out
    paired = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    # a text that was UTF-8: every surrogate is an escape (``\\udc80`` too), else
    # U+DC80..U+DCFF may be bytes of the line that were not UTF-8, kept
    return replace_lone_surrogates(paired, raw_bytes=has_surrogates(text))


def cast(value: Any, type_name: str) -> Any:
    """``Types key:type`` conversion of one value; a value that does not convert stays as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if type_name == "float":
            return float(text)
        if type_name in ("integer", "hex"):
            number = int(text, 10 if type_name == "integer" else 16)
            # msgpack holds 64 bits: a 128-bit id stays text rather than failing to encode
            return number if -(1 << 63) <= number < (1 << 64) else value
    except ValueError:
        return value
    if type_name == "bool":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        return value
    return value


def _caster(type_name: str) -> Callable[[Any], Any]:
    """``cast(value, type_name)`` with the type chosen once (the per-record form)."""
    if type_name == "string":
        return _same
    return functools.partial(_cast_str, type_name=type_name)


def _same(value: Any) -> Any:
    return value


def _cast_str(value: Any, type_name: str) -> Any:
    return cast(value, type_name) if isinstance(value, str) else value


class BaseParser(ABC):
    """Shared parse steps: extract fields, then time, types and decoders."""

    format = ""

    def __init__(self, settings: ParserSettings) -> None:
        self.settings = settings
        self.name = settings.name
        #: Types, prebuilt: (key, conversion) for the keys that change
        self._casts = tuple(
            (key, _caster(type_name))
            for key, type_name in settings.types.items()
            if type_name != "string"
        )
        #: False when a record needs nothing after its fields (no time format, casts, decoders)
        self.needs_finish = bool(
            settings.time_format is not None or self._casts or settings.decoders
        )
        #: Decode_Field(_As) rules per key (relaybit.parsers.decoders)
        self._decoders = group_rules(settings.decoders)
        #: True when a record needs types or decoders (not only its time)
        self.needs_more_than_time = bool(self._casts or settings.decoders)

    @abstractmethod
    def fields(self, text: str) -> dict[str, Any] | None:
        """The raw fields of ``text``, or None when it does not match."""

    def fields_bytes(self, line: bytes) -> dict[str, Any] | None:
        """:meth:`fields` of a raw line (non-UTF-8 bytes kept as surrogates)."""
        return self.fields(line.decode("utf-8", "surrogateescape"))

    def parse(self, text: str) -> ParseResult | None:
        """``(time or None, record)`` for ``text``, or None when it does not match."""
        record = self.fields(text)
        if record is None:
            return None
        if not self.needs_finish:
            return None, record
        return self.finish(record), record

    def finish(self, record: dict[str, Any]) -> EventTime | None:
        """Time, types and decoders on freshly extracted fields (in place); the time or None."""
        s = self.settings
        when: EventTime | None = None
        time_format = s.time_format
        if time_format is not None and s.time_key in record:
            raw = record[s.time_key]
            if raw.__class__ is str:
                when = time_format.parse(raw)
            elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
                when = time_format.parse(str(raw))
            if when is None:
                log.debug(
                    "parser %s: %r does not follow time format %r; kept as a field",
                    s.name,
                    raw,
                    time_format.fmt,
                )
            elif not s.time_keep:
                del record[s.time_key]
        for key, convert in self._casts:
            if key in record:
                record[key] = convert(record[key])
        if s.decoders:
            apply_decoders(self._decoders, record)
        return when

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
