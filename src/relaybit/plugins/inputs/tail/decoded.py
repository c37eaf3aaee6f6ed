"""``unicode.encoding``: a UTF-16 file read as UTF-8 (Fluent Bit's UTF-16LE, UTF-16BE, auto).

The tail reads the file through :class:`Utf16Reader`, which decodes blocks of
the raw file incrementally (a code unit or surrogate pair cut by a block
boundary waits for the next block) and hands out UTF-8 bytes; a byte-order
mark at the head is dropped.  Offsets of such a file count UTF-8 bytes (as the
decompressed bytes of a ``.gz`` file), in the DB too: reopening at an offset
decodes the file from its head up to it.
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


class Utf16Reader:
    """UTF-8 bytes of a UTF-16 file, block by block, following its growth."""

    def __init__(self, fd: int, codec: str) -> None:
        self.fd = fd
        self.codec = codec
        self._reset()

    def _reset(self) -> None:
        self.raw_pos = 0
        self._decoder = codecs.getincrementaldecoder(self.codec)("replace")
        self._head = True

    def read(self, block: int) -> bytes:
        """Up to about ``block`` raw bytes more, decoded; b"" when nothing new is there."""
        data = os.pread(self.fd, block, self.raw_pos)
        if not data:
            return b""
        self.raw_pos += len(data)
        text = self._decoder.decode(data)
        if self._head and text:
            self._head = False
            if text[0] == "\ufeff":
                text = text[1:]
        return text.encode("utf-8", "surrogatepass")

    def skip(self, count: int | None) -> int:
        """Move past ``count`` decoded bytes (None: to the end); the decoded bytes passed."""
        done = 0
        while count is None or done < count:
            data = self.read(1 << 20)
            if not data:
                break
            done += len(data)
        # a skip that stops inside a block keeps its rest: re-read it from there
        if count is not None and done > count:
            done = self._replay(count)
        return done

    def _replay(self, count: int) -> int:
        """Decode again from the head, stopping at exactly ``count`` decoded bytes."""
        self._reset()
        done = 0
        while done < count:
            data = os.pread(self.fd, 2, self.raw_pos)  # one code unit at a time
            if not data:
                break
            self.raw_pos += len(data)
            text = self._decoder.decode(data)
            if self._head and text:
                self._head = False
                text = text.removeprefix("\ufeff")
            done += len(text.encode("utf-8", "surrogatepass"))
        return done

    def size_hint(self, position: int) -> int:
        """For the tail's checks: ``position`` + 1 while raw bytes are unread, 0 when
        the file shrank under the read position (truncated: read again from the head)."""
        size = os.fstat(self.fd).st_size
        if size < self.raw_pos:
            self._reset()
            return 0
        return position + (1 if size > self.raw_pos else 0)
