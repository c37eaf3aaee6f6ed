"""The ``json`` parser: a line holding one JSON object becomes the record."""

from __future__ import annotations

from typing import Any

import orjson

from relaybit.codec.jsonvalue import json_object, msgpack_safe
from relaybit.parsers.base import BaseParser

__all__ = ["JsonParser", "json_object", "msgpack_safe"]


class JsonParser(BaseParser):
    """Only a JSON object matches (an array, a number or bad JSON does not)."""

    format = "json"

    def fields(self, text: str) -> dict[str, Any] | None:
        return json_object(text)

    def fields_bytes(self, line: bytes) -> dict[str, Any] | None:
        """orjson straight on the bytes; what it refuses takes :func:`json_object`'s path."""
        try:
            value = _loads(line)
        except _JSONDecodeError:
            return json_object(line.decode("utf-8", "surrogateescape"))
        return value if value.__class__ is dict else None


_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
