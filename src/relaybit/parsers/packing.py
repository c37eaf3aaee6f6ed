"""A batch of lines -> packed ``[time, record]`` entries through a parser (the inputs' hot path).

:class:`ParsedLines` does per batch what ``parse`` + ``msgpack.pack`` did per
line, without the layers: the parser's :meth:`~BaseParser.fields_bytes` (orjson
straight on the bytes for json), :meth:`~BaseParser.finish` only when the
parser has a time format, types or decoders, the time written as msgpack bytes
(the batch's time once; a parsed time once per distinct time), each record
packed by one reused ``msgpack.Packer`` (without ``unicode_errors``, which
makes msgpack copy every str first; a record holding surrogates is packed again
with :data:`~relaybit.codec.text.SURROGATES`: bytes that were not UTF-8 kept,
a lone surrogate written U+FFFD) and the batch joined once.  A line the
parser does not match becomes ``{key: line}`` (raw bytes kept).  Parsers that
are not :class:`~relaybit.parsers.base.BaseParser` (a user's object with a
``parse(text)`` method) take the general path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.records import gc_paused
from relaybit.codec.text import SURROGATES
from relaybit.parsers.base import BaseParser
from relaybit.parsers.timefmt import TimeFormat

_TIME = struct.Struct(">II")
#: array of 2, then fixext 8 of type 0 (EventTime): what precedes a record's 8 time bytes
_ENTRY_TIME = b"\x92\xd7\x00"
#: distinct time texts whose entry head a ParsedLines keeps
_HEADS_KEPT = 4096


def entry_head(when: EventTime) -> bytes:
    """The bytes of an entry up to its record: array header and the EventTime."""
    return _ENTRY_TIME + _TIME.pack(when.seconds & 0xFFFFFFFF, when.nanoseconds)


def _no_fields(line: bytes) -> None:
    return None


def _may_change(line: bytes) -> bool:
    """A line with a backslash whose records may hold text that packing and decoding
    change: bytes that are not UTF-8 (surrogates an unescape may put side by side), or
    an escaped surrogate (``\\udc80``)."""
    return not line.isascii() or b"\\ud" in line or b"\\uD" in line


def _round_trip(record: Any, pack: Any, pack_safe: Any) -> Any:
    try:
        data = pack(record)
    except UnicodeEncodeError:
        data = pack_safe(record)
    return msgpack.unpackb(
        data, ext_hook=slice, raw=False, unicode_errors="surrogateescape", strict_map_key=False
    )


class ParsedLines:
    """Packs lines through ``parser``: the parsed record, or ``{key: line}`` when it fails.

    ``parser`` None packs every line as ``{key: line}`` (with ``extra`` and
    ``offset_key``: LinePacker is faster without them).

    ``extra`` holds keys added to every record after parsing (tail's
    ``path_key``); ``offset_key`` adds each line's start offset.
    """

    __slots__ = ("_extra", "_heads", "_packer", "_safe", "key", "offset_key", "parser")

    def __init__(
        self,
        parser: Any,
        key: str = "log",
        extra: Iterable[tuple[str, Any]] = (),
        offset_key: str | None = None,
    ) -> None:
        self.parser = parser
        self.key = key
        self._extra = dict(extra)
        self.offset_key = offset_key
        #: time text -> entry head bytes (formats without a fraction)
        self._heads: dict[str, bytes] = {}
        self._packer = msgpack.Packer(default=default, use_bin_type=True)
        #: for a record holding surrogates: bytes that were not UTF-8 are kept, and a lone
        #: surrogate (a plugin's parser, a decoder) is U+FFFD rather than failing its whole
        #: batch (tail would read that batch again for ever)
        self._safe = msgpack.Packer(default=default, use_bin_type=True, unicode_errors=SURROGATES)

    def pack(
        self, lines: Sequence[bytes], now: bytes, starts: Sequence[int] | None = None
    ) -> bytes:
        """Entries for ``lines``; ``now`` is the batch time (``time_ext`` bytes).

        ``starts`` (the lines' start offsets) is needed when ``offset_key`` is set.
        """
        if not lines:
            return b""
        with gc_paused():
            if self.parser is None or isinstance(self.parser, BaseParser):
                return self._pack_fast(lines, b"\x92" + now, starts)  # type: ignore[return-value]
            return self._pack_general(lines, b"\x92" + now, starts)

    def entries(
        self, lines: Sequence[bytes], now: bytes, starts: Sequence[int] | None = None
    ) -> list[list[Any]] | None:
        """What :func:`~relaybit.codec.records.decode_entries` gives for :meth:`pack`'s
        bytes, without packing them (None for a parser of the general path).

        A record whose text may not survive the trip as it is (a str holding bytes
        that are not UTF-8 next to an escape the parser or a decoder resolves) is
        packed and decoded, as the bytes path would.
        """
        if self.parser is not None and not isinstance(self.parser, BaseParser):
            return None
        if not lines:
            return []
        with gc_paused():
            return self._pack_fast(lines, b"\x92" + now, starts, decoded=True)  # type: ignore[return-value]

    def _pack_fast(
        self,
        lines: Sequence[bytes],
        head: bytes,
        starts: Sequence[int] | None,
        decoded: bool = False,
    ) -> bytes | list[list[Any]]:
        parser: BaseParser | None = self.parser
        fields = parser.fields_bytes if parser is not None else _no_fields
        finish = parser.finish if parser is not None and parser.needs_finish else None
        # a parser whose only step after the fields is its time: the time text goes straight
        # to entry bytes (cached per text, or per second for fractions); finish() otherwise
        time_format: TimeFormat | None = None
        time_key = ""
        keep = False
        if finish is not None and parser is not None and not parser.needs_more_than_time:
            time_format = parser.settings.time_format
            time_key = parser.settings.time_key
            keep = parser.settings.time_keep
        heads = self._heads
        pack_safe = self._safe.pack
        # entry heads kept per time text: formats with a year and no fraction
        per_text = time_format is not None and time_format.cached and not time_format.fractional
        pack = self._packer.pack
        extra = self._extra
        offset_key = self.offset_key
        key = self.key
        parts: list[Any] = []
        append = parts.append
        last_when: EventTime | None = None
        last_head = head
        times: dict[bytes, slice] = {}  # decoded: entry head -> its time as decode_entries has it
        as_is = decoded and not (parser is not None and parser.settings.decoders)
        for i, line in enumerate(lines):
            record = fields(line)
            when: EventTime | None = None
            entry = head
            if record is None:
                record = {key: line.decode("utf-8", "surrogateescape")}
            elif time_format is not None:
                raw = record.get(time_key)
                if raw is not None:
                    found = heads.get(raw) if raw.__class__ is str else None
                    if found is None and raw.__class__ is str:
                        found_parts = time_format.parse_parts(raw)
                        if found_parts is not None:
                            found = _ENTRY_TIME + _TIME.pack(*found_parts)
                            if per_text:
                                if len(heads) >= _HEADS_KEPT:
                                    heads.clear()
                                heads[raw] = found
                    if found is not None:
                        entry = found
                        if not keep:
                            del record[time_key]
                    else:  # not a text, or not the format: finish() decides (and logs)
                        when = finish(record)  # type: ignore[misc]
            elif finish is not None:
                when = finish(record)
            if extra:
                record.update(extra)
            if offset_key is not None:
                record[offset_key] = starts[i] if starts is not None else 0
            if when is not None:
                if when is not last_when:  # a cached time is the same object
                    last_when, last_head = when, entry_head(when)
                entry = last_head
            if decoded:
                stamp = times.get(entry)
                if stamp is None:
                    stamp = times[entry] = slice(0, entry[3:])
                if not as_is or (b"\\" in line and _may_change(line)):
                    record = _round_trip(record, pack, pack_safe)
                append([stamp, record])
                continue
            append(entry)
            try:  # without unicode_errors msgpack packs str directly (a third faster)
                append(pack(record))
            except UnicodeEncodeError:
                append(pack_safe(record))
        return parts if decoded else b"".join(parts)

    def _pack_general(
        self, lines: Sequence[bytes], head: bytes, starts: Sequence[int] | None
    ) -> bytes:
        from relaybit.plugins.inputs.lines import apply_parser

        pack = self._safe.pack
        parts: list[bytes] = []
        for i, line in enumerate(lines):
            text = line.decode("utf-8", "surrogateescape")
            parsed = apply_parser(self.parser, text)
            when: Any = None
            if parsed is not None:
                record = dict(parsed[1])
                when = parsed[0]
            else:
                record = {self.key: text}
            record.update(self._extra)
            if self.offset_key is not None:
                record[self.offset_key] = starts[i] if starts is not None else 0
            if when is None:
                parts.append(head)
                parts.append(pack(record))
            elif isinstance(when, EventTime | float):
                if isinstance(when, float):
                    when = EventTime.from_float(when)
                parts.append(entry_head(when))
                parts.append(pack(record))
            else:  # an integer time (or anything else) is packed as it is
                parts.append(pack([when, record]))
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"<ParsedLines parser={self.parser!r} key={self.key!r}>"
