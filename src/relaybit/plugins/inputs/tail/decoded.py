"""``unicode.encoding``: a UTF-16 file read as UTF-8 (Fluent Bit's UTF-16LE, UTF-16BE, auto).

The tail reads the file through :class:`Utf16Reader`, which decodes blocks of
the raw file incrementally (a code unit or surrogate pair cut by a block
boundary waits for the next block) and hands out UTF-8 bytes; a byte-order
mark at the head is passed over.  Offsets stay bytes of the file, as Fluent
Bit's: :func:`utf16_size` gives the file bytes of decoded text (every
character but the astral ones is one 16-bit unit, a replacement character for
an invalid unit too), so a ``db`` row or an ``offset_key`` value points into
the file itself and reopening at an offset reads from there.
"""

from __future__ import annotations

import codecs
import os

#: ``unicode.encoding`` values (Fluent Bit's spellings, lower-cased) -> Python codecs
UNICODE_ENCODINGS = {
    "auto": "utf-16",  # the byte-order mark decides; little-endian without one
    "utf-16le": "utf-16-le",
    "utf16-le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "utf16-be": "utf-16-be",
}

_BOMS = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}

#: UTF-8 continuation bytes (deleted: one byte left per character)
_CONTINUATION = bytes(range(0x80, 0xC0))
#: every byte but the leads of 4-byte UTF-8 sequences (characters past U+FFFF)
_NOT_ASTRAL = bytes(range(0xF0))


def utf16_size(data: bytes) -> int:
    """Bytes in UTF-16 of the UTF-8 ``data`` (a character counts where its first byte is)."""
    chars = len(data.translate(None, _CONTINUATION))
    astral = len(data.translate(None, _NOT_ASTRAL))  # a surrogate pair: one unit more
    return 2 * (chars + astral)


class Utf16Reader:
    """UTF-8 bytes of a UTF-16 file, block by block from a file offset, following its growth."""

    def __init__(self, fd: int, codec: str) -> None:
        self.fd = fd
        self.codec = codec
        #: file offset of the next byte read (a half unit waiting in the decoder is past it)
        self.raw_pos = 0
        #: file offset of the first decoded byte (past a byte-order mark at the head)
        self.start = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    def open(self, offset: int) -> int:
        """Read from file offset ``offset`` (rounded down to a whole unit) from now on; the
        offset kept.  At the head a byte-order mark is passed over once it is there."""
        self.raw_pos = self.start = max(offset - offset % 2, 0)
        self._decoder = None
        return self.raw_pos

    def _begin(self) -> bool:
        """Choose the byte order (auto: the mark; little-endian without one), pass a mark
        at the head; False while the file has not two bytes yet."""
        head = os.pread(self.fd, 2, 0)
        if len(head) < 2:
            return False
        codec = self.codec
        if codec not in _BOMS:  # auto
            codec = "utf-16-be" if head == codecs.BOM_UTF16_BE else "utf-16-le"
        if self.raw_pos == 0 and head == _BOMS[codec]:
            self.raw_pos = self.start = 2
        self._decoder = codecs.getincrementaldecoder(codec)("replace")
        return True

    def read(self, block: int) -> bytes:
        """Up to about ``block`` raw bytes more, decoded; b"" when nothing new is there."""
        if self._decoder is None and not self._begin():
            return b""
        assert self._decoder is not None
        data = os.pread(self.fd, block, self.raw_pos)
        if not data:
            return b""
        self.raw_pos += len(data)
        return self._decoder.decode(data).encode("utf-8", "surrogatepass")
