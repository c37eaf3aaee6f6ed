"""Entries decoded for filters and processors, and encoded back, at a low cost per record.

A chunk holds entries back to back: ``[time, record]``, or ``[[time,
metadata], record]`` when the record carries metadata (Fluent Bit 2.1+).
:func:`decode_entries` turns such bytes into a list of ``[head, record]``
lists, where the *head* is the entry's first element as it was written: the
time alone, or the ``[time, metadata]`` pair.  Filters pass heads on untouched,
so metadata and exact times survive any number of filters; a filter that
needs the time reads it with :func:`entry_time`, one that sets a time uses
:func:`with_time` (which keeps the metadata).

Cost: msgpack calls no Python function per record.  An EventTime (ext type 0)
is decoded by ``slice`` (a C constructor: ``slice(0, b'<8 bytes>')``) instead
of a Python ``ext_hook``, and :func:`encode_entries` writes such a time back
as the same bytes without a ``default`` callback; records are packed by one
C call each.  Any other value a filter puts in an entry (an
:class:`~relaybit.codec.msgpack.EventTime`, a float time, an ExtType) is
encoded too, through the slower generic path.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.text import SURROGATES

#: ``[`` + EventTime: a fixarray of two, then fixext 8 of type 0
_HEAD_EVENT_TIME = b"\x92\xd7\x00"
_ARRAY2 = b"\x92"
_NO_HEAD = object()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch of records is decoded, built or encoded.

    Records (dicts of str, numbers, lists) hold no cycles; with the collector on,
    the thousands of containers of one batch or chunk trigger collections that walk
    the young objects, or the agent's whole heap, again and again (about 0.7 us a
    record with a big heap).  The collector's state is restored after, errors
    included.  The block must not await.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def new_entry_packer() -> msgpack.Packer:
    """A Packer for :func:`encode_entries`.

    It has no ``unicode_errors``: msgpack then writes a str's UTF-8 straight
    from the string (with ``unicode_errors`` set it encodes every str to a new
    bytes object first, 0.41 against 0.25 us for a 200-byte record).  A str
    with surrogates makes :func:`encode_entries` encode that batch again with
    :data:`~relaybit.codec.text.SURROGATES` (bytes that were not UTF-8 kept, a
    lone surrogate a filter or processor left written U+FFFD, as Fluent Bit).
    """
    return msgpack.Packer(default=default, use_bin_type=True)


def _escaping_packer() -> msgpack.Packer:
    return msgpack.Packer(default=default, use_bin_type=True, unicode_errors=SURROGATES)


def decode_entries(data: bytes) -> list[Any]:
    """Every item of ``data`` (entries back to back): ``[head, record]`` lists.

    Strings that are not UTF-8 decode with surrogateescape (and encode back to
    the same bytes); ext values (EventTime) stay raw (``slice(code, data)``).
    """
    unpacker = msgpack.Unpacker(
        ext_hook=slice,
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=0,
    )
    unpacker.feed(data)
    return list(unpacker)


def encode_entries(entries: list[Any], packer: msgpack.Packer) -> bytes:
    """``entries`` (pairs ``[head, record]``, lists or tuples) back to back as bytes.

    Strings with surrogates go back to the bytes they were decoded from
    (surrogateescape); a lone surrogate is written U+FFFD.  Raises (TypeError, ValueError) when an entry is not a
    pair or holds a value msgpack cannot encode.
    """
    try:
        return _encode(entries, packer.pack)
    except UnicodeEncodeError:  # a str that was not UTF-8 (its bytes back), a lone surrogate
        return _encode(entries, _escaping_packer().pack)


def _encode(entries: list[Any], pack: Any) -> bytes:
    # entries of a batch mostly share one head object (the batch's time): written once
    parts: list[bytes] = []
    append = parts.append
    last: Any = _NO_HEAD
    written = b""
    for head, record in entries:
        if head is not last:
            last = head
            if head.__class__ is slice and head.start == 0 and len(head.stop) == 8:
                written = _HEAD_EVENT_TIME + head.stop
            else:
                written = _ARRAY2 + pack(head)
        append(written)
        append(pack(record))
    return b"".join(parts)


def _time_of(value: Any) -> Any:
    if value.__class__ is slice:
        data = value.stop
        if value.start == 0 and len(data) == 8:
            return EventTime(int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big"))
        return msgpack.ExtType(value.start, data)
    return value


def entry_time(head: Any) -> Any:
    """The time of an entry's head: an EventTime, an int or a float."""
    if head.__class__ is list or head.__class__ is tuple:
        return _time_of(head[0]) if head else 0
    return _time_of(head)


def entry_metadata(head: Any) -> dict[Any, Any] | None:
    """The metadata of an entry's head (None when it has none)."""
    if (head.__class__ is list or head.__class__ is tuple) and len(head) > 1:
        meta = head[1]
        return meta if isinstance(meta, dict) else None
    return None


def with_time(head: Any, time: Any) -> Any:
    """``head`` with its time replaced by ``time`` (its metadata kept)."""
    if head.__class__ is list or head.__class__ is tuple:
        return [time, *head[1:]]
    return time
