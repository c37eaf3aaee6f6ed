"""Packed entries: count, validate and normalise without decoding when possible.

Chunks hold ``[time, record]`` entries back to back.  Fluent Bit may send
``[[time, metadata], record]``; those are rewritten to ``[time, record]``.  The
hot path (entries already shaped ``[time, record]``) only walks the bytes with
``Unpacker.skip()`` and looks at two bytes per entry: nothing is decoded.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.errors import RemoteProtocolError

_FIXARRAY_2 = 0x92
_ARRAY_HEADS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}


def _unpacker(max_size: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=max(max_size, 1),
    )


def inspect_packed(data: bytes) -> tuple[int, bool]:
    """Count the entries in ``data``; also whether they are all plain ``[time, record]``.

    Raises :class:`RemoteProtocolError` when the bytes are not whole msgpack values.
    """
    unpacker = _unpacker(len(data))
    unpacker.feed(data)
    count = 0
    plain = True
    pos = 0
    end = len(data)
    try:
        while pos < end:
            if plain and (
                data[pos] != _FIXARRAY_2 or pos + 1 >= end or data[pos + 1] in _ARRAY_HEADS
            ):
                plain = False
            unpacker.skip()
            pos = unpacker.tell()
            count += 1
    except msgpack.OutOfData:
        raise RemoteProtocolError("packed entries end in the middle of an entry") from None
    except Exception as exc:
        raise RemoteProtocolError(f"malformed packed entries: {exc}") from None
    return count, plain


def normalise_entry(item: Any) -> tuple[Any, Any]:
    """``[time, record]`` or ``[[time, metadata], record]`` -> ``(time, record)``."""
    if not isinstance(item, list | tuple) or len(item) < 2:
        raise RemoteProtocolError("an entry must be an array [time, record]")
    time, record = item[0], item[1]
    if isinstance(time, list | tuple):
        if not time:
            raise RemoteProtocolError("an entry's [time, metadata] header is empty")
        time = time[0]
    if not isinstance(time, int | float | EventTime) or isinstance(time, bool):
        raise RemoteProtocolError(f"an entry's time must be an integer or EventTime, got {time!r}")
    if not isinstance(record, dict):
        raise RemoteProtocolError("an entry's record must be a map")
    return time, record


def repack_entries(items: Iterable[Any]) -> tuple[bytes, int]:
    """Encode decoded entries as ``[time, record]`` back to back; returns (bytes, count)."""
    packer = new_packer_surrogates()
    out = [packer.pack(list(normalise_entry(item))) for item in items]
    return b"".join(out), len(out)


def normalise_packed(data: bytes) -> tuple[bytes, int]:
    """Packed entries -> (``[time, record]`` entries, count); zero-copy when already plain."""
    count, plain = inspect_packed(data)
    if plain:
        return data, count
    unpacker = _unpacker(len(data))
    unpacker.feed(data)
    try:
        items = list(unpacker)
    except Exception as exc:  # already walked: should not happen
        raise RemoteProtocolError(f"malformed packed entries: {exc}") from None
    return repack_entries(items)


def new_packer_surrogates() -> msgpack.Packer:
    """A Packer that round-trips str decoded with ``surrogateescape``."""
    return msgpack.Packer(
        default=default,
        use_bin_type=True,
        unicode_errors="surrogateescape",
    )


def gunzip_all(data: bytes, max_size: int) -> bytes:
    """Inflate every gzip member of ``data``; at most ``max_size`` bytes out."""
    out: list[bytes] = []
    total = 0
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)
            piece = d.decompress(rest, max_size - total + 1)
            total += len(piece)
            if total > max_size or d.unconsumed_tail:
                raise RemoteProtocolError(
                    f"compressed entries inflate to more than {max_size} bytes"
                )
            if not d.eof:
                raise RemoteProtocolError("truncated gzip member in compressed entries")
            out.append(piece)
            rest = d.unused_data
    except zlib.error as exc:
        raise RemoteProtocolError(f"bad gzip data in compressed entries: {exc}") from None
    return b"".join(out)


def gzip_entries(data: bytes, level: int = 6) -> bytes:
    """One gzip member of ``data`` (what CompressedPackedForward sends)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def with_integer_times(data: bytes) -> bytes:
    """Rewrite entries so every time is integer seconds (``time_as_integer``)."""
    unpacker = _unpacker(len(data))
    unpacker.feed(data)
    packer = new_packer_surrogates()
    parts: list[bytes] = []
    for item in unpacker:
        time, record = normalise_entry(item)
        seconds = time.seconds if isinstance(time, EventTime) else int(time)
        parts.append(packer.pack([seconds, record]))
    return b"".join(parts)
