"""JSON text -> values msgpack can encode: shared by the json parser, its decoder and
the inputs that read JSON (http, elasticsearch, tcp, stdin, dummy)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from relaybit.codec.text import has_surrogates, replace_lone_surrogates


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
        try:  # the line's bytes that were not UTF-8 (U+DC80..U+DCFF) stay those bytes
            value = msgpack_safe(json.loads(stripped), raw_bytes=has_surrogates(stripped))
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    """The JSON value of ``data`` (an input's body, line or option), ready for msgpack.

    orjson, and where it refuses a lone surrogate escape (``"\\ud800"``) the
    stdlib, that escape written U+FFFD as Fluent Bit 5.1.1 writes it.  Raises
    orjson.JSONDecodeError (a ValueError) with orjson's reason for what is not
    JSON: bytes that are not UTF-8, and a value nested too deep for the stdlib.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):  # its first error: anything else stays an error
            raise
        error = exc
    try:
        text = data.decode() if isinstance(data, bytes) else data  # not UTF-8: orjson's error
        if "\\u" not in text:  # only an escape is read otherwise by the stdlib
            raise error
        return msgpack_safe(json.loads(text, parse_constant=_no_constant), raw_bytes=False)
    except (ValueError, RecursionError):  # nested too deep for the stdlib: orjson's error
        raise error from None


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


def msgpack_safe(value: Any, *, raw_bytes: bool = True) -> Any:
    """``value`` decoded by the stdlib ``json`` made encodable by msgpack.

    Integers beyond 64 bits become their digits (text); a lone surrogate escape
    (``"\\ud83d"``, a cut emoji) becomes U+FFFD, as Fluent Bit writes it
    (:func:`~relaybit.codec.text.replace_lone_surrogates`).  With ``raw_bytes``
    (the text was decoded with ``surrogateescape``) U+DC80..U+DCFF stand for
    bytes of the line that were not UTF-8 and stay those bytes.  Everything else
    is returned as is.
    """
    if isinstance(value, str):
        return value if value.isascii() else replace_lone_surrogates(value, raw_bytes=raw_bytes)
    if isinstance(value, bool) or not isinstance(value, int | dict | list):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, list):
        return [msgpack_safe(v, raw_bytes=raw_bytes) for v in value]
    return {
        msgpack_safe(k, raw_bytes=raw_bytes): msgpack_safe(v, raw_bytes=raw_bytes)
        for k, v in value.items()
    }
