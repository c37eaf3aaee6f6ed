"""The ``json`` parser: a line holding one JSON object becomes the record."""

from __future__ import annotations

import json
from typing import Any

import orjson

from relaybit.parsers.base import BaseParser


class JsonParser(BaseParser):
    """Only a JSON object matches (an array, a number or bad JSON does not)."""

    format = "json"

    def fields(self, text: str) -> dict[str, Any] | None:
        stripped = text.strip()
        if not stripped.startswith("{"):
            return None
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            try:  # orjson refuses lone surrogates and big ints; the stdlib does not
                value = json.loads(stripped)
            except ValueError:
                return None
        return value if isinstance(value, dict) else None
