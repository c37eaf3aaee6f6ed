"""A chunk's records to JSON at a low cost per record (msgspec), for the JSON outputs.

:func:`decode_maps` decodes a whole chunk in one C call into ``(time, record)``
pairs, and only when every record is a map that JSON writes exactly as
:func:`relaybit.plugins.outputs.formats.to_json` does: string keys, UTF-8
strings, numbers, booleans, nil, arrays and maps nested at most
:data:`MAX_DEPTH` deep.  Anything else in a chunk (a bin or ext value inside a
record, a string that is not UTF-8, a non-string key, a record that is not a
map, deeper nesting) makes it return None, and the caller takes the general
path, record by record: the same records, only slower.  Times stay as they
travel: an EventTime is a ``msgspec.msgpack.Ext`` (code 0, 8 bytes), read by
:func:`time_key` and :func:`plain_time`.

:data:`JSON` writes the bodies (``encode_lines`` writes NDJSON in one call;
``msgspec.Raw`` items go out as they are).  Floats are written in their
shortest form, as orjson does, except that an exponent has no ``+``
(``1e20``, not ``1e+20``): the same number.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any, Union

import msgpack
import msgspec

Ext = msgspec.msgpack.Ext
Raw = msgspec.Raw

#: Nesting of arrays and maps inside a record that the fast path takes.
MAX_DEPTH = 8


def _value_type() -> Any:
    value: Any = Union[str, int, float, bool, None]  # noqa: UP007 (a runtime type for msgspec)
    for _ in range(MAX_DEPTH):
        value = Union[str, int, float, bool, None, list[value], dict[str, value]]  # noqa: UP007
    return value


_ENTRIES = msgspec.msgpack.Decoder(list[tuple[Any, dict[str, _value_type()]]])  # type: ignore[misc]

#: The JSON encoder of the fast path.
JSON = msgspec.json.Encoder()


def count_entries(data: bytes) -> int:
    """How many msgpack objects ``data`` holds back to back (skipped, not decoded)."""
    unpacker = msgpack.Unpacker(max_buffer_size=0)
    unpacker.feed(data)
    n = 0
    skip = unpacker.skip
    try:
        while True:
            skip()
            n += 1
    except msgpack.OutOfData:
        return n


def decode_maps(data: bytes, count: int | None = None) -> list[tuple[Any, dict[str, Any]]] | None:
    """Every entry of a chunk as ``(time, record)``, or None when the fast path cannot take it.

    ``time`` is as it travels: an ``Ext`` EventTime, an int, a float, or
    ``[time, metadata]`` (see :func:`plain_time`).  ``count`` is how many
    entries the chunk says it holds (saves counting them); when it is wrong the
    entries are counted and decoded again.
    """
    if count is None or count < 0:
        count = count_entries(data)
    try:
        entries: list[tuple[Any, dict[str, Any]]] = _ENTRIES.decode(_header(count) + data)
    except msgspec.DecodeError:
        counted = count_entries(data)
        if counted == count:
            return None
        try:
            entries = _ENTRIES.decode(_header(counted) + data)
        except msgspec.DecodeError:
            return None
    return entries


def _header(count: int) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big")


def plain_time(time: Any) -> Any:
    """An entry's time as the general path has it: EventTime ext as ``msgpack.ExtType``.

    ``[time, metadata]`` gives its time.
    """
    if type(time) is list:
        time = time[0] if time else 0
    if type(time) is Ext:
        return msgpack.ExtType(time.code, time.data)
    return time


def time_key(time: Any) -> Any:
    """A hashable key of an entry's time (the ext's bytes for an EventTime)."""
    kind = type(time)
    if kind is Ext:
        return time.data if time.code == 0 else ("ext", time.code, time.data)
    if kind is int or kind is float:
        return time
    return ("time", repr(plain_time(time)))


def runs(entries: list[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """Consecutive entries of one time, as ``(time, records)`` (tail stamps a read batch once)."""
    for time, group in groupby(entries, key=itemgetter(0)):
        yield time, [record for _, record in group]
