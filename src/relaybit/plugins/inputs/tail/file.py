"""One followed file: an open descriptor, the consumed offset and the incomplete last line.

:meth:`TailedFile.read_lines` reads one big block (``os.read``, regular files
are fast) and splits it in bulk; ``offset`` only moves past complete lines,
so saving it never skips a partial line.  Lines longer than ``max_line``:
skipped when ``skip_long_lines`` is on, else cut into pieces of ``max_line``
bytes (nothing is lost; Fluent Bit stops reading the file instead).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from relaybit.plugins.inputs.tail.decoded import Utf16Reader, utf16_size

READ_BLOCK = 1 << 20


@dataclass(slots=True)
class Batch:
    """Lines read in one go and the offset just past them."""

    lines: list[bytes]
    end_offset: int
    #: byte offset of each line start (only when ``offsets`` were asked for)
    starts: list[int] | None = None
    skipped_long: int = 0
    split_long: int = 0


@dataclass(eq=False)
class TailedFile:
    """A file being followed (identified by device and inode, not by name)."""

    path: str  #: the name it had when discovered (``path_key``)
    fd: int
    dev: int
    inode: int
    offset: int  #: bytes consumed (complete lines emitted, or skipped)
    tag: str
    db_id: int = 0
    pending: bytes = b""
    skipping: bool = False  #: inside a long line being skipped
    rotated_at: float | None = None  #: monotonic time the rotation was seen
    rotated_name: str = ""
    warned_long: bool = False
    saved_offset: int = -1
    lines_read: int = field(default=0)
    #: a ``.gz`` file: read through this, offsets count decompressed bytes (a file read
    #: to its end is saved at its size: :meth:`resume_offset`)
    gz: gzip.GzipFile | None = None
    gz_done: bool = False
    gz_raw: BinaryIO | None = None
    #: ``unicode.encoding``: a UTF-16 file read as UTF-8 (offsets stay bytes of the file)
    utf16: Utf16Reader | None = None

    def open_gzip(self, offset: int, size: int) -> None:
        """Read this (static) file decompressed, from decompressed ``offset``; ``offset``
        equal to the file's ``size`` is a file read to its end (:meth:`resume_offset`)."""
        self.gz_raw = os.fdopen(os.dup(self.fd), "rb")
        self.gz = gzip.GzipFile(fileobj=self.gz_raw, mode="rb")
        if offset and offset == size:
            self.gz_done = True
        elif offset:
            self.gz.seek(offset)

    @property
    def gz_read_to_end(self) -> bool:
        """A ``.gz`` file read to its end, its last line too (saved at its size)."""
        return self.gz is not None and self.gz_done and not self.pending

    def resume_offset(self) -> int:
        """The offset to save (db, a rotated file's end): ``offset``, but the size of a
        ``.gz`` file read to its end, as Fluent Bit saves it (in the middle of one, the
        decompressed offset: Fluent Bit's, a compressed one, cannot be resumed)."""
        if self.gz_read_to_end:
            with contextlib.suppress(OSError):
                return os.fstat(self.fd).st_size
        return self.offset

    def open_utf16(self, codec: str) -> None:
        """Read this UTF-16 file as UTF-8 from its (file) ``offset``."""
        self.utf16 = Utf16Reader(self.fd, codec)
        self.offset = self.utf16.open(self.offset)

    def rewind(self) -> None:
        """Read again from the head (the file was truncated)."""
        self.offset = 0
        self.pending = b""
        self.skipping = False
        if self.utf16 is not None:
            self.utf16.open(0)

    def _read(self, block: int) -> bytes:
        if self.utf16 is not None:
            data = self.utf16.read(block)
            if self.offset < self.utf16.start and not self.pending:  # past a byte-order mark
                self.offset = self.utf16.start
            return data
        if self.gz is None:
            return os.pread(self.fd, block, self.read_position)
        if self.gz_done:
            return b""
        try:
            data = self.gz.read(block)
        except (EOFError, OSError, zlib.error):  # truncated or not gzip: what was read stays
            data = b""
        if not data:
            self.gz_done = True
        return data

    @property
    def read_position(self) -> int:
        """Where the next read starts (offset plus the incomplete line)."""
        if self.utf16 is not None:
            return self.utf16.raw_pos
        return self.offset + len(self.pending)

    def size(self) -> int:
        if self.gz is not None:  # decompressed: unknown until read to its end
            return self.read_position + (0 if self.gz_done else 1)
        return os.fstat(self.fd).st_size

    def read_lines(
        self,
        *,
        max_line: int,
        skip_long: bool,
        skip_empty: bool,
        want_starts: bool = False,
        block: int = READ_BLOCK,
        truncate: bool = False,
    ) -> Batch | None:
        """Read up to ``block`` bytes; the complete lines in them, or None at end of file.

        ``truncate`` (truncate_long_lines): a long line keeps its first ``max_line``
        bytes, the rest is dropped."""
        data = self._read(block)
        if not data:
            return None
        # positions below are file offsets, base + index in buf; for a UTF-16 file
        # (decoded) they are indexes in buf first, made file offsets at the end
        offset = self.offset  # file offset of buf[0]
        base = 0 if self.utf16 is not None else offset
        buf = self.pending + data if self.pending else data
        lines = buf.split(b"\n")
        tail = lines.pop()
        consumed = len(buf) - len(tail)
        batch = Batch(lines, base + consumed)
        base_first = base
        if self.skipping:
            if not lines:  # still inside the long line being skipped
                self.offset = offset + self._span(buf)
                self.pending = b""
                return Batch([], self.offset, [] if want_starts else None)
            # the first "line" is the end of the long line being skipped
            first = lines.pop(0)
            self.skipping = False
            base_first = base + len(first) + 1
        if want_starts:
            starts = []
            pos = base_first
            for line in lines:
                starts.append(pos)
                pos += len(line) + 1
            batch.starts = starts
        if lines and b"\r" in buf:
            lines[:] = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        if lines and max(map(len, lines)) > max_line:
            self._long_lines(batch, max_line, skip_long, truncate)
        if skip_empty and lines:
            keep = [i for i, ln in enumerate(lines) if ln]
            if len(keep) != len(lines):
                batch.lines = [lines[i] for i in keep]
                if batch.starts is not None:
                    batch.starts = [batch.starts[i] for i in keep]
        # the incomplete line: keep it, unless it is already too long
        if len(tail) > max_line:
            if skip_long or truncate:
                if truncate:
                    batch.lines.append(tail[:max_line])
                    if batch.starts is not None:
                        batch.starts.append(base + consumed)
                    batch.split_long += 1
                else:
                    batch.skipped_long += 1
                self.skipping = True
                self.pending = b""
                batch.end_offset = base + len(buf)
            else:
                cut = len(tail) - len(tail) % max_line
                pieces = [tail[i : i + max_line] for i in range(0, cut, max_line)]
                batch.lines.extend(pieces)
                if batch.starts is not None:
                    tail_start = base + consumed
                    batch.starts.extend(tail_start + i for i in range(0, cut, max_line))
                batch.split_long += 1
                tail = tail[cut:]
                batch.end_offset = base + consumed + cut
                self.pending = tail
        else:
            self.pending = tail
        if self.utf16 is not None:
            _to_file_offsets(batch, buf, offset)
        self.offset = batch.end_offset
        self.lines_read += len(batch.lines)
        return batch

    def _long_lines(self, batch: Batch, max_line: int, skip_long: bool, truncate: bool) -> None:
        lines: list[bytes] = []
        starts: list[int] = []
        for i, line in enumerate(batch.lines):
            start = batch.starts[i] if batch.starts is not None else 0
            if len(line) <= max_line:
                lines.append(line)
                starts.append(start)
            elif truncate:
                batch.split_long += 1
                lines.append(line[:max_line])
                starts.append(start)
            elif skip_long:
                batch.skipped_long += 1
            else:
                batch.split_long += 1
                for j in range(0, len(line), max_line):
                    lines.append(line[j : j + max_line])
                    starts.append(start + j)
        batch.lines = lines
        if batch.starts is not None:
            batch.starts = starts

    def take_pending(self) -> bytes:
        """The incomplete last line, consumed (for a file that will not grow any more)."""
        data = self.pending
        self.offset += self._span(data)
        self.pending = b""
        return data

    def _span(self, data: bytes) -> int:
        """File bytes of ``data`` read from this file."""
        return utf16_size(data) if self.utf16 is not None else len(data)

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close()
            self.gz = None
        if self.gz_raw is not None:  # the dup'ed descriptor: GzipFile does not close it
            self.gz_raw.close()
            self.gz_raw = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        state = f" rotated->{self.rotated_name}" if self.rotated_at is not None else ""
        return f"<TailedFile {self.path} inode={self.inode} offset={self.offset}{state}>"


def _to_file_offsets(batch: Batch, buf: bytes, offset: int) -> None:
    """A UTF-16 file's batch: its positions, indexes in the decoded ``buf``, made file
    offsets (``buf[0]`` is at ``offset``); they are in order, so one walk does them."""
    done = 0
    at = offset

    def file_offset(index: int) -> int:
        nonlocal done, at
        if index < done:  # not expected: count again from the start of buf
            done, at = 0, offset
        at += utf16_size(buf[done:index])
        done = index
        return at

    if batch.starts is not None:
        batch.starts = [file_offset(i) for i in batch.starts]
    batch.end_offset = file_offset(batch.end_offset)
