"""``multiline.parser cri`` alone, fast: the CRI line format split, not searched. Pure.

:class:`CriStream` gives exactly the records :class:`~relaybit.multiline.stream.MultilineStream`
gives with the built-in ``cri`` parser as its only parser (golden tests hold
both to that), with the per-line layers removed: a line ``<time> <stream> <P|F>
<log>`` is split on its first three spaces (the regular expression is the
fallback for the odd line), the time comes from the format's per-second cache,
and the state machine is written out for this one parser: partial (``P``)
lines of a stream are joined up to its full (``F``) line, a line of the other
stream or a line that is not CRI ends what is pending (as Fluent Bit's
``flb_ml_append`` does), a record never grows past MAX_RECORD_BYTES.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from relaybit.codec.msgpack import EventTime
from relaybit.multiline.definition import MultilineParser
from relaybit.multiline.stream import MAX_RECORD_BYTES, Record
from relaybit.parsers.packing import entry_head
from relaybit.parsers.regex import RegexParser
from relaybit.parsers.timefmt import TimeFormat

_STREAMS = ("stdout", "stderr")
#: array of 2, fixext 8 of type 0 (EventTime), seconds, nanoseconds
_HEAD = struct.Struct(">BBBII")
_TAGS = ("F", "P")


class _Pending:
    """One stream's record being joined."""

    __slots__ = ("context", "offset", "parts", "size", "stamp", "touched")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.context: dict[str, Any] | None = None
        self.stamp: Any = None  #: EventTime, or entry-head bytes (packed_times)
        self.touched = 0.0
        self.offset: int | None = None


class CriStream:
    """The per-file joiner for ``multiline.parser cri`` (MultilineStream's interface)."""

    def __init__(self, parser: MultilineParser, *, packed_times: bool = False) -> None:
        """``packed_times``: records carry their time as entry-head bytes (tail packs them).

        Each record's time is then ``b"\\x92\\xd7\\x00" + seconds + nanoseconds``
        (:func:`relaybit.parsers.packing.entry_head` of its EventTime) instead of an
        EventTime: no object per record on the hot path.
        """
        regex_parser = parser.parser
        if not isinstance(regex_parser, RegexParser) or regex_parser.settings.time_format is None:
            raise ValueError("CriStream needs the built-in cri multiline parser")
        self.parser = parser
        self._regex = regex_parser.regex
        self._time: TimeFormat = regex_parser.settings.time_format
        self.flush_timeout = parser.flush_timeout
        #: stream name -> pending record, in the order the streams were first seen
        self._groups: dict[str, _Pending] = {}
        self._last: str | None = None
        self._out: list[Any] = []
        self._packed = packed_times
        self._given: EventTime | None = None
        self._given_head = b""
        self.lines = 0
        self.records = 0

    # --- public API (as MultilineStream) ---------------------------------------------------

    def feed(
        self, text: str, stamp: EventTime, now: float, offset: int | None = None
    ) -> list[Record]:
        """Add one line; the records it completed (often none)."""
        self._feed(text, stamp, now, offset)
        return self._take()

    def feed_lines(
        self,
        lines: Sequence[bytes],
        stamp: EventTime,
        now: float,
        starts: Sequence[int] | None = None,
    ) -> list[Record]:
        """Add a batch of raw lines (non-UTF-8 bytes kept as surrogates); the records completed."""
        feed = self._feed
        if starts is None:
            for line in lines:
                feed(line.decode("utf-8", "surrogateescape"), stamp, now, None)
        else:
            for i, line in enumerate(lines):
                offset = starts[i] if i < len(starts) else None
                feed(line.decode("utf-8", "surrogateescape"), stamp, now, offset)
        return self._take()

    def flush_due(self, now: float) -> list[Record]:
        """Records whose last line came ``flush_timeout`` or more before ``now``."""
        timeout = self.flush_timeout
        for group in self._groups.values():
            if (group.parts or group.context is not None) and now - group.touched >= timeout:
                self._emit(group)
        return self._take()

    def flush(self) -> list[Record]:
        """Every pending record (end of file, rotation done, shutdown)."""
        self._flush_all()
        return self._take()

    def next_deadline(self) -> float | None:
        deadlines = [
            g.touched + self.flush_timeout
            for g in self._groups.values()
            if g.parts or g.context is not None
        ]
        return min(deadlines) if deadlines else None

    @property
    def pending(self) -> bool:
        return any(g.parts or g.context is not None for g in self._groups.values())

    def pending_offset(self) -> int | None:
        offsets = [
            g.offset
            for g in self._groups.values()
            if (g.parts or g.context is not None) and g.offset is not None
        ]
        return min(offsets) if offsets else None

    # --- the state machine ------------------------------------------------------------------

    def _feed(self, text: str, stamp: Any, now: float, offset: int | None) -> None:
        self.lines += 1
        fields = text.split(" ", 3)
        if (
            len(fields) == 4
            and fields[1] in _STREAMS
            and fields[2] in _TAGS
            and fields[0]
            and "\n" not in text
        ):
            time_text, stream, tag, log = fields
        else:
            m = self._regex.search(text)
            if m is None:  # not a CRI line: it ends what is pending and is a record of its own
                self._flush_all()
                if text:  # an empty line makes no record (MultilineStream joins nothing)
                    self._out.append(
                        (self._head_of(stamp) if self._packed else stamp, {"log": text})
                    )
                    self.records += 1
                return
            time_text, stream, tag, log = m.group("time", "stream", "_p", "log")
        parts = self._time.parse_parts(time_text)
        if parts is not None:
            stamp = (
                _HEAD.pack(0x92, 0xD7, 0, parts[0], parts[1]) if self._packed else EventTime(*parts)
            )
        elif self._packed:
            stamp = self._head_of(stamp)
        groups = self._groups
        group = groups.get(stream)
        if group is None:
            group = groups[stream] = _Pending()
        if self._last != stream:
            previous = groups.get(self._last) if self._last is not None else None
            if previous is not None:
                self._emit(previous)
            self._last = stream
        empty = not group.parts and group.context is None
        if not empty and group.size + len(log) > MAX_RECORD_BYTES:
            self._emit(group)
            empty = True
        if empty:
            group.context = {"time": time_text, "stream": stream, "_p": tag, "log": log}
            group.stamp = stamp
            group.offset = offset
        if log:
            group.parts.append(log)
            group.size += len(log)
        if tag == "F":
            self._emit(group)
        else:
            group.touched = now

    def _head_of(self, stamp: EventTime) -> bytes:
        """The entry head of the batch's own time (computed once per distinct time)."""
        if stamp is not self._given:
            self._given, self._given_head = stamp, entry_head(stamp)
        return self._given_head

    def _flush_all(self) -> None:
        for group in self._groups.values():
            self._emit(group)

    def _emit(self, group: _Pending) -> None:
        if not group.parts and group.context is None:
            return
        text = "".join(group.parts)
        if group.context is not None:
            record = group.context
            record["log"] = text
        else:  # pragma: no cover - every pending record has its first line's fields
            record = {"log": text}
        stamp = group.stamp if group.stamp is not None else EventTime(0, 0)
        self._out.append((stamp, record))
        self.records += 1
        group.parts = []
        group.size = 0
        group.context = None
        group.stamp = None
        group.offset = None

    def _take(self) -> list[Record]:
        out, self._out = self._out, []
        return out

    def __repr__(self) -> str:
        return f"<CriStream lines={self.lines} records={self.records}>"
