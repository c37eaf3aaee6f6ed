"""A Forward frame judged from its first bytes: refuse it before it is buffered.

A frame a client sends to a server is ``nil`` (a heartbeat) or an array of 2
to 6 elements (``[tag, ...]`` or ``PING``) whose first element is a string.
The headers of the array, of the tag and of the second element say how big
the frame is at least: a PackedForward's entries (bin or str) declare their
length, a Forward's entries array its count.  :func:`check_frame_head` reads
only those headers, so random bytes are refused at their first byte and a
frame that declares more than ``buffer_max_size`` (a 100 MB bin, an array of
four billion entries) is refused before any of it is kept.
"""

from __future__ import annotations

from relaybit.errors import FrameTooLarge, RemoteProtocolError

#: Bytes of a frame's start kept to judge it; a tag longer than this is not judged.
HEAD_LIMIT = 64 * 1024

_ARRAY16, _ARRAY32 = 0xDC, 0xDD
_MAP16, _MAP32 = 0xDE, 0xDF
_STR8, _STR16, _STR32 = 0xD9, 0xDA, 0xDB
_BIN8, _BIN16, _BIN32 = 0xC4, 0xC5, 0xC6
_NIL = 0xC0


def _header(head: bytes | bytearray, pos: int) -> tuple[str, int, int] | None:
    """``(kind, declared, header length)`` of the value at ``pos``; None: more bytes needed.

    ``kind`` is ``"str"``, ``"bin"``, ``"array"``, ``"map"`` or ``"other"``;
    ``declared`` is the byte length (str, bin) or the element count (array, map).
    """
    if pos >= len(head):
        return None
    b = head[pos]
    if 0xA0 <= b <= 0xBF:
        return "str", b & 0x1F, 1
    if 0x90 <= b <= 0x9F:
        return "array", b & 0x0F, 1
    if 0x80 <= b <= 0x8F:
        return "map", b & 0x0F, 1
    size = {
        _STR8: ("str", 1),
        _STR16: ("str", 2),
        _STR32: ("str", 4),
        _BIN8: ("bin", 1),
        _BIN16: ("bin", 2),
        _BIN32: ("bin", 4),
        _ARRAY16: ("array", 2),
        _ARRAY32: ("array", 4),
        _MAP16: ("map", 2),
        _MAP32: ("map", 4),
    }.get(b)
    if size is None:
        return "other", 0, 1
    kind, width = size
    if pos + 1 + width > len(head):
        return None
    return kind, int.from_bytes(head[pos + 1 : pos + 1 + width], "big"), 1 + width


def _least_bytes(kind: str, declared: int) -> int:
    """The fewest bytes the body of a value with this header can take."""
    if kind in ("str", "bin"):
        return declared
    if kind == "array":
        return declared  # one byte per element at least
    if kind == "map":
        return 2 * declared
    return 0


def check_frame_head(head: bytes | bytearray, limit: int) -> bool:
    """Judge a client's frame from its first bytes.

    True: the frame may follow (its headers fit ``limit``); False: more bytes
    are needed to judge.  Raises :class:`FrameTooLarge` when the headers
    declare more than ``limit`` bytes, :class:`RemoteProtocolError` when the
    bytes cannot start a Forward frame.
    """
    if not head:
        return False
    first = head[0]
    if first == _NIL:
        return True
    top = _header(head, 0)
    if top is None:
        return False
    kind, count, pos = top
    if kind != "array":
        raise RemoteProtocolError(
            f"expected an event array [tag, ...], got a byte 0x{first:02x} that starts none"
        )
    if not 2 <= count <= 6:
        raise RemoteProtocolError(f"expected an event array of 2 to 6 elements, got {count}")
    tag = _header(head, pos)
    if tag is None:
        return False
    kind, length, width = tag
    if kind != "str":
        raise RemoteProtocolError("the tag must be a string")
    pos += width + length
    if pos > limit:
        raise FrameTooLarge(
            f"frame declares a tag of {length} bytes, more than buffer_max_size ({limit} bytes)"
        )
    if pos > HEAD_LIMIT:
        return True  # a tag this long is not judged here; buffer_max_size still holds
    second = _header(head, pos)
    if second is None:
        return False
    kind, declared, width = second
    least = pos + width + _least_bytes(kind, declared)
    if least > limit:
        what = f"{declared} entries" if kind == "array" else f"{declared} bytes"
        if kind == "map":
            what = f"a map of {declared} pairs"
        raise FrameTooLarge(
            f"frame declares {what} ({least} bytes or more), more than buffer_max_size"
            f" ({limit} bytes)"
        )
    return True
