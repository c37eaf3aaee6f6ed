"""Fluent Bit record accessor keys: ``$key``, ``$key['sub']['x']``, ``$list[0]``. Pure.

A plain name without ``$`` is a top-level key (as the grep and modify filters
treat it).  :class:`RecordAccessor` reads, tests and deletes values along the
path in a decoded record.
"""

from __future__ import annotations

import re
from typing import Any

_FIRST = re.compile(r"\$([^\[\]]+)")
_SUB = re.compile(r"""\[\s*(?:'([^']*)'|"([^"]*)"|(-?\d+))\s*\]""")

_MISSING = object()


class RecordAccessor:
    """A compiled key path into a record (maps and arrays)."""

    __slots__ = ("path", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.path: tuple[str | int, ...] = parse_accessor(pattern)

    def get(self, record: Any, default: Any = None) -> Any:
        """The value at the path, or ``default`` when any step is missing."""
        node = record
        for step in self.path:
            if isinstance(step, int):
                if not isinstance(node, list) or not -len(node) <= step < len(node):
                    return default
                node = node[step]
            else:
                if not isinstance(node, dict) or step not in node:
                    return default
                node = node[step]
        return node

    def exists(self, record: Any) -> bool:
        return self.get(record, _MISSING) is not _MISSING

    def __repr__(self) -> str:
        return f"<RecordAccessor {self.pattern!r}>"


def parse_accessor(pattern: str) -> tuple[str | int, ...]:
    """``$a['b'][0]`` -> ``('a', 'b', 0)``; ``name`` -> ``('name',)``; ValueError if malformed."""
    text = pattern.strip()
    if not text:
        raise ValueError("empty key")
    if not text.startswith("$"):
        return (text,)
    m = _FIRST.match(text)
    if not m:
        raise ValueError(f"invalid record accessor {pattern!r}: expected $key or $key['sub']")
    path: list[str | int] = [m.group(1)]
    pos = m.end()
    while pos < len(text):
        sub = _SUB.match(text, pos)
        if not sub:
            raise ValueError(
                f"invalid record accessor {pattern!r} at {text[pos:]!r}: expected ['key'] or [index]"
            )
        if sub.group(3) is not None:
            path.append(int(sub.group(3)))
        else:
            path.append(sub.group(1) if sub.group(1) is not None else sub.group(2))
        pos = sub.end()
    return tuple(path)


def value_as_text(value: Any) -> str | None:
    """A record value as the text regexes see, or None for maps, arrays and nil.

    Fluent Bit matches strings; relaybit also matches numbers and booleans
    through their text (``true``/``false``), so ``Exclude status ^5`` works on
    an integer status.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return None
