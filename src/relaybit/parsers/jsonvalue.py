"""JSON text -> values msgpack can encode (shared by the json parser, its decoder, tcp)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, ready for msgpack; None for anything else.

    orjson first; what it refuses (lone surrogates, bytes that are not UTF-8)
    goes through the stdlib and :func:`msgpack_safe`; too deep nesting is bad JSON.
    Integers beyond 64 bits: orjson reads them as floats, as Fluent Bit 5.1
    (yyjson) does; the stdlib path keeps their digits as text.
    """
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        try:
            value = msgpack_safe(json.loads(stripped))
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


def msgpack_safe(value: Any) -> Any:
    """``value`` decoded by the stdlib ``json`` made encodable by msgpack.

    Integers beyond 64 bits become their digits (text); strings holding lone
    surrogates (``"\\ud83d"``, a cut emoji) keep them as their WTF-8 bytes (a
    raw str, as lines that are not UTF-8); bytes of the line that are not UTF-8
    (read as ``\\udc80``-``\\udcff``) stay those bytes.  Everything else is
    returned as is.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8", "surrogateescape")  # raw bytes of a non-UTF-8 line stay bytes
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")
        return value
    if isinstance(value, bool) or not isinstance(value, int | dict | list):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, list):
        return [msgpack_safe(v) for v in value]
    return {msgpack_safe(k): msgpack_safe(v) for k, v in value.items()}
