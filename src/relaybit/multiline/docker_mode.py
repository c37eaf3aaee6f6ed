"""tail's legacy ``docker_mode``: Docker JSON lines split at 16 KB are put back together.

A line whose ``log`` does not end with a newline is held; the next lines' ``log``
values are appended until one ends with a newline, and the reassembled JSON
line (the last line's fields, ``log`` replaced by the joined text) goes on as
one line (to tail's ``parser``, or under its ``key``).  Lines that are not a
JSON object with a string ``log`` pass through unchanged.

With ``docker_mode_parser`` (a parser matching first lines) a line whose
``log`` matches it starts a new record and the others are appended to the
pending one, so application stack traces are joined too.  Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from relaybit.codec.msgpack import EventTime
from relaybit.multiline.stream import Record, feed_each
from relaybit.parsers.json import json_object
from relaybit.plugins.inputs.lines import Parser, apply_parser

ToRecord = Callable[[str, EventTime], Record]


def _log_object(text: str) -> dict[str, Any] | None:
    value = json_object(text)
    if value is not None and isinstance(value.get("log"), str):
        return value
    return None


def _dump(obj: dict[str, Any]) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # lone surrogates, huge ints
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class DockerModeStream:
    """The per-file state of docker_mode (same interface as MultilineStream)."""

    def __init__(
        self, to_record: ToRecord, flush_timeout: float, firstline: Parser | None = None
    ) -> None:
        self.to_record = to_record
        self.flush_timeout = flush_timeout
        self.firstline = firstline
        self._logs: list[str] = []
        self._last: dict[str, Any] | None = None
        self._stamp: EventTime | None = None
        self._offset: int | None = None
        self._touched = 0.0

    def feed(
        self, text: str, stamp: EventTime, now: float, offset: int | None = None
    ) -> list[Record]:
        """One line in; the records it completed."""
        obj = _log_object(text)
        if obj is None:
            return [self.to_record(text, stamp)]
        log: str = obj["log"]
        out: list[Record] = []
        if self.firstline is not None:
            if apply_parser(self.firstline, log) is not None:
                out.extend(self.flush())
            elif self._last is None:
                return [self.to_record(text, stamp)]
            self._hold(obj, stamp, now, offset)
            return out
        if self._last is None and log.endswith("\n"):
            return [self.to_record(text, stamp)]
        self._hold(obj, stamp, now, offset)
        if log.endswith("\n"):
            out.extend(self.flush())
        return out

    def feed_lines(
        self,
        lines: Sequence[bytes],
        stamp: EventTime,
        now: float,
        starts: Sequence[int] | None = None,
    ) -> list[Record]:
        """:meth:`feed` for a batch of raw lines (non-UTF-8 bytes kept as surrogates)."""
        return feed_each(self.feed, lines, stamp, now, starts)

    def _hold(self, obj: dict[str, Any], stamp: EventTime, now: float, offset: int | None) -> None:
        if self._last is None:
            self._stamp = stamp
            self._offset = offset
        self._logs.append(obj["log"])
        self._last = obj
        self._touched = now

    def flush_due(self, now: float) -> list[Record]:
        if self._last is not None and now - self._touched >= self.flush_timeout:
            return self.flush()
        return []

    def flush(self) -> list[Record]:
        if self._last is None:
            return []
        merged = dict(self._last)
        merged["log"] = "".join(self._logs)
        stamp = self._stamp or EventTime(0, 0)
        self._logs, self._last, self._stamp, self._offset = [], None, None, None
        return [self.to_record(_dump(merged), stamp)]

    def next_deadline(self) -> float | None:
        return None if self._last is None else self._touched + self.flush_timeout

    @property
    def pending(self) -> bool:
        return self._last is not None

    def pending_offset(self) -> int | None:
        return self._offset if self._last is not None else None

    def __repr__(self) -> str:
        return f"<DockerModeStream pending={len(self._logs)}>"
