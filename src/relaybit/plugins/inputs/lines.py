"""Lines to msgpack entries, fast: shared by tail, stdin and tcp (``format none``).

:class:`LinePacker` builds ``[EventTime, {key: line}]`` entries by direct byte
assembly: a per-batch prefix (array(2), the EventTime ext, the map header and
the key) and, per line, only a str header and the line's bytes.  Lines that are
not valid UTF-8 are kept as msgpack str holding the raw bytes, as Fluent Bit
does (readers decode them with ``surrogateescape``).

Parsers come from ``ctx.service["parsers"]`` (a ``{name: parser}`` dict built
from ``[PARSER]`` sections; relaybit.parsers' built-ins when absent).  A parser is any object with
``parse(text: str) -> (time | None, record) | record | None``; see
:func:`apply_parser`.  Lines through a parser, a batch at a time:
:class:`relaybit.parsers.packing.ParsedLines`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from relaybit.clock import Clock
from relaybit.errors import ConfigError

_TIME = struct.Struct(">II")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def str_header(length: int) -> bytes:
    """The msgpack str header for a body of ``length`` bytes."""
    if length < 32:
        return _U8.pack(0xA0 | length)
    if length < 0x100:
        return b"\xd9" + _U8.pack(length)
    if length < 0x10000:
        return b"\xda" + _U16.pack(length)
    return b"\xdb" + _U32.pack(length)


def pack_str(data: bytes) -> bytes:
    """``data`` as a msgpack str (raw bytes kept as they are)."""
    return str_header(len(data)) + data


def time_ext(seconds: int, nanoseconds: int) -> bytes:
    """An EventTime as msgpack bytes (fixext 8, type 0)."""
    return b"\xd7\x00" + _TIME.pack(seconds & 0xFFFFFFFF, nanoseconds)


def now_ext(clock: Clock) -> bytes:
    """The current time as EventTime msgpack bytes."""
    now = clock.time()
    seconds = int(now)
    return time_ext(seconds, min(int((now - seconds) * 1e9), 999_999_999))


class _Heads(dict[int, bytes]):
    """length -> prefix + str header, filled on demand (C-speed lookups via map())."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, length: int) -> bytes:
        value = self.prefix + str_header(length)
        self[length] = value
        return value


class LinePacker:
    """Packs lines as ``[time, {key: line, **extra}]`` entries.

    ``extra`` holds constant keys appended to every record (``path_key``), as
    already-packed (key, value) msgpack bytes.
    """

    __slots__ = ("_extra", "_map_head", "key", "key_bytes")

    def __init__(self, key: str = "log", extra: Iterable[tuple[str, str | bytes]] = ()) -> None:
        self.key = key
        self.key_bytes = pack_str(key.encode())
        pairs = list(extra)
        self._extra = b"".join(
            pack_str(k.encode()) + pack_str(v if isinstance(v, bytes) else v.encode())
            for k, v in pairs
        )
        size = 1 + len(pairs)
        self._map_head = _U8.pack(0x80 | size) if size < 16 else b"\xde" + _U16.pack(size)

    def prefix(self, time: bytes) -> bytes:
        """What precedes each line's str header, for one batch time."""
        return b"\x92" + time + self._map_head + self.key_bytes

    def pack(self, lines: list[bytes], time: bytes) -> bytes:
        """Entries for ``lines``, all stamped ``time`` (from :func:`time_ext`)."""
        if not lines:
            return b""
        heads = list(map(_Heads(self.prefix(time)).__getitem__, map(len, lines)))
        if not self._extra:
            parts: list[bytes] = [b""] * (2 * len(lines))
            parts[::2] = heads
            parts[1::2] = lines
            return b"".join(parts)
        parts = [self._extra] * (3 * len(lines))
        parts[::3] = heads
        parts[1::3] = lines
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"<LinePacker key={self.key!r}>"


class Parser(Protocol):
    """What an input needs of a parser (the parsers package provides these)."""

    def parse(self, text: str) -> Any: ...


def lookup_parser(
    name: str | None, ctx_service: Mapping[str, Any], *, ctx_options: Any, section: str
) -> Parser | None:
    """The parser named by the ``parser`` option, or None; ConfigError when unknown."""
    if not name:
        return None
    from relaybit.parsers import BUILTIN_PARSERS  # lazily: only inputs with a parser need it

    parsers = ctx_service.get("parsers") or BUILTIN_PARSERS
    parser = parsers.get(name)
    if parser is None:
        known = ", ".join(sorted(parsers)) or "none defined"
        raise ConfigError(
            f"no parser named {name!r} (known parsers: {known})",
            ctx_options.origin("parser"),
            section=section,
            key="parser",
        )
    return parser


def apply_parser(parser: Parser, text: str) -> tuple[Any, Any] | None:
    """``(time or None, record)`` from ``parser``, or None when the line does not match."""
    result = parser.parse(text)
    if result is None:
        return None
    if isinstance(result, dict):
        return None, result
    if isinstance(result, tuple | list) and len(result) == 2:
        time, record = result
        if isinstance(record, dict):
            return time, record
    return None
