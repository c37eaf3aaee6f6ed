"""Fluent Bit's scalar syntaxes: booleans, sizes (5M) and durations (30s). Pure."""

from __future__ import annotations

import re

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:b|ib)?\s*$", re.IGNORECASE)
_SIZE_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_TIME_MULT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_bool(text: str) -> bool:
    """``on/off/true/false/yes/no/1/0`` in any case; raises ValueError otherwise."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected on/off, true/false, yes/no or 1/0, got {text!r}")


def parse_size(text: str) -> int:
    """``512``, ``32k``, ``5M``, ``1G`` (binary multiples, as Fluent Bit) -> bytes."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"expected a size such as 512, 32K, 5M or 1G, got {text!r}")
    return int(float(m.group(1)) * _SIZE_MULT[m.group(2).lower()])


def parse_time(text: str) -> float:
    """``5``, ``1.5``, ``500ms``, ``30s``, ``5m``, ``1h``, ``1d`` -> seconds."""
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"expected a duration such as 5, 1.5, 500ms, 30s, 5m or 1h, got {text!r}")
    return float(m.group(1)) * _TIME_MULT[(m.group(2) or "s").lower()]
