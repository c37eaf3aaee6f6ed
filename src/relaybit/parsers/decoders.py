"""``Decode_Field`` / ``Decode_Field_As``, as Fluent Bit 5.1.1 runs them (flb_parser_decoder.c).

Rules are grouped per key, in the order the keys were first named; the keys
of a record are visited in the record's order, and only text values are
decoded.  For one key, its rules run in order:

- a decoder that fails goes on to the next rule with ``try_next`` or
  ``do_next``, and ends the key's rules without an action;
- one that works ends them too, unless its action is ``do_next``;
- ``Decode_Field_As`` replaces the value (the next rules decode the new text;
  once it is a map, they are skipped); ``Decode_Field`` keeps the value and
  appends the decoded map's keys at the end of the record (only a map: a
  decoded text is refused, as Fluent Bit logs "string type is not allowed";
  only the first key's map is appended, as Fluent Bit merges one; a
  ``Decode_Field`` with ``do_next`` after one that worked is skipped).

Decoders: ``json`` takes a JSON object only (leading spaces allowed);
``escaped`` (``\\n \\a \\b \\t \\v \\f \\r \\\\``; another escaped character
loses its backslash) and ``escaped_utf8`` (also ``\\" \\' \\/``, octal,
``\\xHH``, ``\\uXXXX`` with surrogate pairs, ``\\UXXXXXXXX``; a broken ``\\u``
gives U+FFFD) always work; ``mysql_quoted`` unquotes a ``'...'`` or ``"..."``
value and keeps any other as it is.  Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from relaybit.codec.jsonvalue import msgpack_safe


@dataclass(frozen=True)
class Decoder:
    """One ``Decode_Field`` / ``Decode_Field_As`` rule."""

    replace: bool  #: True for Decode_Field_As (the field's value is replaced)
    decoder: str  #: json, escaped, escaped_utf8, mysql_quoted
    key: str
    action: str | None = None  #: do_next / try_next


_FAILED = object()

# --- the decoders -------------------------------------------------------------------------


def decode_json(value: str) -> Any:
    """The JSON object ``value`` holds, or _FAILED (an array, a number, bad JSON ...)."""
    text = value.lstrip(" ")
    if not text or text[0] not in "{[":
        return _FAILED
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            decoded = msgpack_safe(json.loads(text))
        except (ValueError, RecursionError):
            return _FAILED
    return decoded if isinstance(decoded, dict) else _FAILED


_ESCAPED = {"n": "\n", "a": "\a", "b": "\b", "t": "\t", "v": "\v", "f": "\f", "r": "\r"}
#: a backslash and the character after it (none at the end of the text)
_BACKSLASH = re.compile(r"\\([\s\S]?)")


def unescape_escaped(value: str) -> str:
    """flb_unescape_string: known escapes become their character, others lose the backslash."""
    if "\\" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code == "\\":
            return "\\"
        if not code:  # a backslash at the end: Fluent Bit copies the NUL after the text
            return "\0"
        return _ESCAPED.get(code, code)

    return _BACKSLASH.sub(one, value)


_UTF8_SIMPLE = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
    "n": "\n",
    "b": "\b",
    "t": "\t",
    "f": "\f",
    "r": "\r",
    "v": "\v",
    "a": "\a",
}
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = {n: re.compile("[0-9a-fA-F]{1,%d}" % n) for n in (2, 4, 8)}  # noqa: UP031


def _char(code: int) -> str:
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return "\ufffd"
    return chr(code)


def unescape_utf8(value: str) -> str:
    """flb_unescape_string_utf8: JSON-style and C-style escapes, ``\\u`` surrogate pairs."""
    if "\0" in value:  # Fluent Bit stops at a NUL of the text
        value = value[: value.index("\0")]
    if "\\" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        at = value.find("\\", i)
        if at < 0 or at + 1 >= n:
            out.append(value[i:])
            break
        out.append(value[i:at])
        code = value[at + 1]
        i = at + 2
        simple = _UTF8_SIMPLE.get(code)
        if simple is not None:
            out.append(simple)
        elif "0" <= code <= "7":
            m = _OCTAL.match(value, at + 1)
            assert m is not None
            out.append(_char(int(m.group(), 8)))
            i = m.end()
        elif code in "xU":
            m = _HEX[2 if code == "x" else 8].match(value, i)
            if m is None:
                out.append(code)
            else:
                out.append(_char(int(m.group(), 16)))
                i = m.end()
        elif code == "u":
            i = _read_u(value, i, out)
        else:
            out.append(code)
    return "".join(out)


def _read_u(value: str, i: int, out: list[str]) -> int:
    """A ``\\u`` escape whose digits start at ``i``; appends its character, returns the next index."""
    m = _HEX[4].match(value, i)
    if m is None:
        out.append("\0")  # Fluent Bit writes the value of no digits: a NUL
        return i
    i = m.end()
    if len(m.group()) != 4:
        out.append("\ufffd")
        return i
    code = int(m.group(), 16)
    if 0xDC00 <= code <= 0xDFFF:
        out.append("\ufffd")
        return i
    if 0xD800 <= code <= 0xDBFF:
        if value.startswith("\\u", i) and i + 2 < len(value):
            low = _HEX[4].match(value, i + 2)
            if low is None:
                out.append("\ufffd")
                return i + 2
            i = low.end()
            low_code = int(low.group(), 16)
            if len(low.group()) == 4 and 0xDC00 <= low_code <= 0xDFFF:
                out.append(chr(0x10000 + (((code - 0xD800) << 10) | (low_code - 0xDC00))))
            else:
                out.append("\ufffd")
            return i
        out.append("\ufffd")
        return i
    out.append(chr(code))
    return i


_MYSQL = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", '"': '"', "0": "\0", "Z": "\x1a"}


def mysql_unquote(value: str) -> str:
    """flb_mysql_unquote_string of a quoted value; any other value as it is."""
    if len(value) < 2 or value[0] != value[-1] or value[0] not in "'\"":
        return value

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if not code:
            return "\\"
        return _MYSQL.get(code, "\\" + code)

    return _BACKSLASH.sub(one, value[1:-1])


def run_decoder(decoder: str, value: str) -> Any:
    """The decoded value, or _FAILED."""
    if decoder == "json":
        return decode_json(value)
    if decoder == "escaped":
        return unescape_escaped(value)
    if decoder == "escaped_utf8":
        return unescape_utf8(value)
    if decoder == "mysql_quoted":
        return mysql_unquote(value)
    raise ValueError(f"unknown decoder {decoder}")  # pragma: no cover - validated at build


# --- the rules ------------------------------------------------------------------------------


def group_rules(rules: Iterable[Decoder]) -> dict[str, tuple[Decoder, ...]]:
    """Rules per key, keys in the order first named (Fluent Bit's decoder contexts)."""
    grouped: dict[str, list[Decoder]] = {}
    for rule in rules:
        grouped.setdefault(rule.key, []).append(rule)
    return {key: tuple(rules) for key, rules in grouped.items()}


def apply_decoders(rules_by_key: dict[str, tuple[Decoder, ...]], record: dict[str, Any]) -> None:
    """Decode ``record`` in place."""
    extra: dict[str, Any] | None = None
    for key in [k for k in record if k in rules_by_key]:
        value = record[key]
        if not isinstance(value, str):
            continue
        rules = rules_by_key[key]
        if any(not rule.replace for rule in rules):
            extra = None  # Fluent Bit starts its extra keys afresh for each such key
        data: Any = value
        replaced = merged = False
        out: Any = None
        for rule in rules:
            if not rule.replace and rule.action == "do_next" and merged:
                continue
            if replaced and not isinstance(data, str):
                continue
            decoded = run_decoder(rule.decoder, data)
            if decoded is _FAILED:
                if rule.action in ("try_next", "do_next"):
                    continue
                break
            if rule.replace:
                data = decoded
                replaced = True
            else:
                out = decoded
                merged = True
            if rule.action != "do_next":
                break
        if replaced:
            record[key] = data
        if merged and isinstance(out, dict):
            extra = out
    if extra:
        for key, value in extra.items():
            record.pop(key, None)  # Fluent Bit appends a second one; the last one wins
            record[key] = value
