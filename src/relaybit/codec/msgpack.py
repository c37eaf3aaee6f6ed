"""msgpack helpers shared by every part: Fluent's EventTime (ext type 0) and entries.

An *entry* is one record as it travels: the msgpack array ``[time, record]``,
where ``time`` is an EventTime (ext 0: uint32 seconds, uint32 nanoseconds, big
endian) or an integer.  Chunks hold entries back to back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

_EVENT_TIME = struct.Struct(">II")


@dataclass(frozen=True, slots=True, order=True)
class EventTime:
    """Fluent's nanosecond timestamp (msgpack ext type 0)."""

    seconds: int
    nanoseconds: int = 0

    @classmethod
    def from_float(cls, value: float) -> EventTime:
        seconds = int(value)
        return cls(seconds, round((value - seconds) * 1e9) % 1_000_000_000)

    def to_float(self) -> float:
        return self.seconds + self.nanoseconds / 1e9

    def to_ext(self) -> msgpack.ExtType:
        return msgpack.ExtType(0, _EVENT_TIME.pack(self.seconds, self.nanoseconds))


Time = EventTime | int | float


def time_to_float(value: Any) -> float:
    """Seconds since the epoch of an entry's time (EventTime, int or float)."""
    if isinstance(value, EventTime):
        return value.to_float()
    return float(value)


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack ``ext_hook`` decoding ext type 0 as :class:`EventTime`."""
    if code == 0 and len(data) == 8:
        return EventTime(*_EVENT_TIME.unpack(data))
    return msgpack.ExtType(code, data)


def default(obj: Any) -> Any:
    """msgpack ``default`` encoding :class:`EventTime` as ext type 0 (and a raw ext
    ``slice(code, data)``, as :mod:`relaybit.codec.records` decodes one, as itself)."""
    if isinstance(obj, EventTime):
        return obj.to_ext()
    if obj.__class__ is slice and isinstance(obj.start, int) and isinstance(obj.stop, bytes):
        return msgpack.ExtType(obj.start, obj.stop)
    raise TypeError(f"cannot serialize {type(obj).__name__} to msgpack")


def new_packer() -> msgpack.Packer:
    """A Packer that writes EventTime as ext 0 and str as str (use_bin_type)."""
    return msgpack.Packer(default=default, use_bin_type=True)


def new_unpacker(max_buffer_size: int = 0) -> msgpack.Unpacker:
    """A streaming Unpacker that decodes EventTime and keeps raw str invalid-UTF-8 safe."""
    return msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=max_buffer_size,
    )


def pack_entry(time: Time, record: Any, packer: msgpack.Packer | None = None) -> bytes:
    """One entry ``[time, record]`` as bytes."""
    data: bytes = (packer or new_packer()).pack([time, record])
    return data


def iter_entries(data: bytes) -> Iterator[tuple[Any, Any]]:
    """Decode entries back to back; accepts ``[[time, metadata], record]`` too."""
    unpacker = new_unpacker()
    unpacker.feed(data)
    for item in unpacker:
        if not isinstance(item, list | tuple) or len(item) < 2:
            continue
        time, record = item[0], item[1]
        if isinstance(time, list | tuple) and time:
            time = time[0]
        yield time, record


def unpack_chunk(data: bytes) -> list[list[Any]]:
    """Every entry of a chunk in one pass, without a Python callback per value.

    The items are the entries' msgpack arrays as lists, ``[time, record]`` or
    ``[[time, metadata], record]`` (anything else is dropped, as
    :func:`iter_entries` does).  An EventTime, as time or inside a record, stays
    a ``msgpack.ExtType(0, 8 bytes)``: :func:`time_parts` and :func:`event_time`
    read it.  Strings that are not UTF-8 are surrogate-escaped.
    """
    unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False)
    unpacker.feed(data)
    return [item for item in unpacker if type(item) is list and len(item) >= 2]


def time_parts(value: Any) -> tuple[int, int]:
    """(seconds, nanoseconds) of a time: EventTime, its ExtType, an int or a float."""
    if isinstance(value, EventTime):
        return value.seconds, value.nanoseconds
    if isinstance(value, msgpack.ExtType):
        if value.code == 0 and len(value.data) == 8:
            seconds, nanos = _EVENT_TIME.unpack(value.data)
            return int(seconds), int(nanos)
        return 0, 0
    if isinstance(value, int):
        return value, 0
    if isinstance(value, float):
        seconds = int(value)
        return seconds, round((value - seconds) * 1e9) % 1_000_000_000
    return 0, 0


def event_time(value: Any) -> Any:
    """An ExtType(0) as :class:`EventTime`; any other value as it is."""
    if isinstance(value, msgpack.ExtType) and value.code == 0 and len(value.data) == 8:
        return EventTime(*_EVENT_TIME.unpack(value.data))
    return value


def pack_entries(entries: Any, packer: msgpack.Packer | None = None) -> bytes:
    """Encode an iterable of ``(time, record)`` pairs back to back."""
    p = packer or new_packer()
    return b"".join(p.pack([t, r]) for t, r in entries)
