"""Packed entries: count, validate and normalise without decoding when possible.

Chunks hold ``[time, record]`` entries back to back, and ``[[time, metadata],
record]`` entries where a record carries metadata (Fluent Bit 2+'s shape).
Received entries keep a non-empty metadata map; an empty one (what Fluent Bit
5 sends for most records) is dropped, so ``[[t, {}], r]`` is stored as
``[t, r]``, which every Forward receiver reads.  The hot path (entries already
shaped ``[time, record]``) only walks the bytes with ``Unpacker.skip()`` and
looks at two bytes per entry: nothing is decoded.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack
import zstandard

from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.errors import RemoteProtocolError

_FIXARRAY_2 = 0x92
#: First bytes of a msgpack array (fixarray, array 16, array 32).
ARRAY_HEADS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}


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
                data[pos] != _FIXARRAY_2 or pos + 1 >= end or data[pos + 1] in ARRAY_HEADS
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


def split_entry(item: Any) -> tuple[Any, dict[Any, Any] | None, Any]:
    """``[time, record]`` or ``[[time, metadata], record]`` -> ``(time, metadata, record)``.

    ``metadata`` is ``None`` when the entry has none or an empty map.  Raises
    :class:`RemoteProtocolError` for any other shape.
    """
    if not isinstance(item, list | tuple) or len(item) < 2:
        raise RemoteProtocolError("an entry must be an array [time, record]")
    time, record = item[0], item[1]
    metadata: dict[Any, Any] | None = None
    if isinstance(time, list | tuple):
        if not time:
            raise RemoteProtocolError("an entry's [time, metadata] header is empty")
        if len(time) > 1:
            meta = time[1]
            if meta is not None and not isinstance(meta, dict):
                raise RemoteProtocolError("an entry's metadata must be a map")
            metadata = meta or None
        time = time[0]
    if not isinstance(time, int | float | EventTime) or isinstance(time, bool):
        raise RemoteProtocolError(f"an entry's time must be an integer or EventTime, got {time!r}")
    if not isinstance(record, dict):
        raise RemoteProtocolError("an entry's record must be a map")
    return time, metadata, record


def normalise_entry(item: Any) -> tuple[Any, Any]:
    """``[time, record]`` or ``[[time, metadata], record]`` -> ``(time, record)``."""
    time, _metadata, record = split_entry(item)
    return time, record


def stored_entry(item: Any) -> list[Any]:
    """A received entry as a chunk stores it: metadata kept when there is some."""
    time, metadata, record = split_entry(item)
    if metadata is None:
        return [time, record]
    return [[time, metadata], record]


def repack_entries(items: Iterable[Any], *, keep_metadata: bool = True) -> tuple[bytes, int]:
    """Encode decoded entries back to back; returns (bytes, count).

    With ``keep_metadata`` (received entries) a non-empty metadata map stays
    (``[[time, metadata], record]``); without it every entry is ``[time, record]``.
    """
    packer = new_packer_surrogates()
    shape = stored_entry if keep_metadata else (lambda item: list(normalise_entry(item)))
    out = [packer.pack(shape(item)) for item in items]
    return b"".join(out), len(out)


def _decode_all(data: bytes) -> list[Any]:
    unpacker = _unpacker(len(data))
    unpacker.feed(data)
    try:
        return list(unpacker)
    except Exception as exc:  # already walked: should not happen
        raise RemoteProtocolError(f"malformed packed entries: {exc}") from None


def normalise_packed(data: bytes) -> tuple[bytes, int]:
    """Received packed entries -> (stored entries, count); zero-copy when already plain.

    Entries with a non-empty metadata map keep it; empty metadata is dropped.
    Nothing is decoded (:func:`normalise_entry_bytes`): entries of tiny
    containers cannot make the agent allocate many times their size.
    """
    count, plain = inspect_packed(data)
    if plain:
        return data, count
    unpacker = _unpacker(len(data))
    unpacker.feed(data)
    out = bytearray()
    pos, end = 0, len(data)
    try:
        while pos < end:
            pos = normalise_entry_bytes(data, pos, unpacker, out)
    except RemoteProtocolError:
        raise
    except Exception as exc:  # already walked: should not happen
        raise RemoteProtocolError(f"malformed packed entries: {exc}") from None
    return bytes(out), count


#: First bytes of a msgpack map; of an int or a float.
MAP_HEADS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_INT_HEADS = frozenset(range(0x00, 0x80)) | frozenset(range(0xE0, 0x100))
_INT_HEADS |= {0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3, 0xCA, 0xCB}


#: The size of a time value (an integer, a float or an EventTime) from its first byte.
_TIME_SIZE = {b: 1 for b in range(0x00, 0x80)} | {b: 1 for b in range(0xE0, 0x100)}
_TIME_SIZE |= {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}
_TIME_SIZE |= {0xCA: 5, 0xCB: 9, 0xD7: 10}  # float 32, float 64, fixext 8 (EventTime: type 0)


def is_time(data: bytes | memoryview, pos: int) -> bool:
    """An integer, a float or an EventTime (ext type 0 of 8 bytes) at ``pos``."""
    b = data[pos]
    if b in _INT_HEADS:
        return True
    if b == 0xD7:  # fixext 8
        return pos + 1 < len(data) and data[pos + 1] == 0
    if b == 0xC7:  # ext 8
        return pos + 2 < len(data) and data[pos + 1] == 8 and data[pos + 2] == 0
    return False


def normalise_entry_bytes(
    data: bytes | memoryview, pos: int, unpacker: msgpack.Unpacker, out: bytearray
) -> int:
    """Append the entry at ``pos`` of ``data`` as a chunk stores it; the next position.

    ``unpacker`` holds ``data`` (fed whole) at position ``pos``.  The entry's
    pieces are found with ``skip()`` and copied as bytes: ``[time, record]``
    as it is, ``[[time, metadata], record]`` with a non-empty metadata map,
    without it otherwise (the shapes :func:`stored_entry` gives, nothing
    decoded).  Raises :class:`RemoteProtocolError` for any other shape.
    """
    if data[pos] == _FIXARRAY_2:  # [time, record]: the time's size is in its first byte
        size = _TIME_SIZE.get(data[pos + 1], 0)
        if size and (size != 10 or data[pos + 2] == 0) and data[pos + 1 + size] in MAP_HEADS:
            unpacker.skip()
            end = int(unpacker.tell())
            out += data[pos:end]
            return end
    n = unpacker.read_array_header() if data[pos] in ARRAY_HEADS else 0
    if n < 2:
        raise RemoteProtocolError("an entry must be an array [time, record]")
    start = unpacker.tell()
    meta: bytes | memoryview | None = None
    if data[start] in ARRAY_HEADS:
        k = unpacker.read_array_header()
        if k == 0:
            raise RemoteProtocolError("an entry's [time, metadata] header is empty")
        t0 = unpacker.tell()
        unpacker.skip()
        t1 = unpacker.tell()
        if k > 1:
            unpacker.skip()
            m1 = unpacker.tell()
            first = data[t1]
            if first not in MAP_HEADS and first != 0xC0:
                raise RemoteProtocolError("an entry's metadata must be a map")
            if first not in (0x80, 0xC0):
                meta = data[t1:m1]
            for _ in range(k - 2):
                unpacker.skip()
    else:
        t0 = start
        unpacker.skip()
        t1 = unpacker.tell()
    if not is_time(data, t0):
        raise RemoteProtocolError("an entry's time must be an integer or EventTime")
    r0 = unpacker.tell()
    if data[r0] not in MAP_HEADS:
        raise RemoteProtocolError("an entry's record must be a map")
    unpacker.skip()
    r1 = unpacker.tell()
    for _ in range(n - 2):
        unpacker.skip()
    if meta is None:
        out += b"\x92"
        out += data[t0:t1]
    else:
        out += b"\x92\x92"
        out += data[t0:t1]
        out += meta
    out += data[r0:r1]
    return int(unpacker.tell())


def without_metadata(data: bytes) -> bytes:
    """Entries as ``[time, record]`` only (``retain_metadata_in_forward_mode off``).

    Zero-copy when no entry carries metadata.
    """
    _count, plain = inspect_packed(data)
    if plain:
        return data
    return repack_entries(_decode_all(data), keep_metadata=False)[0]


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


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff_compression(data: bytes) -> str | None:
    """``"gzip"`` or ``"zstd"`` from the payload's magic bytes, else ``None``."""
    if data.startswith(_GZIP_MAGIC):
        return "gzip"
    if data.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def unzstd_all(data: bytes, max_size: int) -> bytes:
    """Decompress every zstd frame of ``data``; at most ``max_size`` bytes out.

    A bounded streaming read first (a zstd bomb never allocates more than
    ``max_size``), then a frame walk that refuses a truncated last frame.
    """
    dctx = zstandard.ZstdDecompressor()
    too_big = f"compressed entries inflate to more than {max_size} bytes"
    try:
        with dctx.stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            if len(reader.read(max_size + 1)) > max_size:
                raise RemoteProtocolError(too_big)
        out: list[bytes] = []
        rest = data
        while rest:
            frame = dctx.decompressobj()
            out.append(frame.decompress(rest))
            if not frame.eof:
                raise RemoteProtocolError("truncated zstd frame in compressed entries")
            rest = frame.unused_data
    except zstandard.ZstdError as exc:
        raise RemoteProtocolError(f"bad zstd data in compressed entries: {exc}") from None
    return b"".join(out)


def zstd_entries(data: bytes, level: int = 3) -> bytes:
    """One zstd frame of ``data`` (CompressedPackedForward with ``compressed: zstd``)."""
    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)


def decompress_entries(data: bytes, declared: str, max_size: int) -> bytes:
    """Inflate a CompressedPackedForward payload.

    As Fluent Bit's in_forward, the payload's magic bytes win over a
    ``compressed`` option that names the other algorithm.
    """
    kind = sniff_compression(data) or declared
    if kind == "zstd":
        return unzstd_all(data, max_size)
    return gunzip_all(data, max_size)


def compress_entries(data: bytes, kind: str, level: int | None = None) -> bytes:
    """``data`` compressed with ``gzip`` (level 6 by default) or ``zstd`` (level 3)."""
    if kind == "zstd":
        return zstd_entries(data, 3 if level is None else level)
    return gzip_entries(data, 6 if level is None else level)


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
