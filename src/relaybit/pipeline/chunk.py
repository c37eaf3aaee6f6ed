"""Chunks: one tag, many records, kept as msgpack bytes.

Code that only moves records (relay, storage, retries) never decodes a chunk.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

#: Fluent Bit's soft chunk size: a chunk is sealed once it holds about this much.
CHUNK_SIZE_LIMIT = 2 * 1024 * 1024

_ids = itertools.count(1)


def new_chunk_id() -> str:
    return f"c{next(_ids):x}"


@dataclass(slots=True, eq=False)
class Chunk:
    """A sealed, immutable batch of entries for one tag.

    ``data`` holds ``records`` msgpack entries ``[time, record]`` back to back.
    ``input_name`` is the instance that produced it (``tail.0``), used for
    routing and for memory accounting.
    """

    tag: str
    data: bytes
    records: int
    input_name: str = ""
    id: str = field(default_factory=new_chunk_id)
    created: float = 0.0
    #: the input route (YAML ``routes:``) that decides its outputs; "" = by tag
    route: str = field(default="", kw_only=True)

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<Chunk {self.id} tag={self.tag!r} records={self.records} bytes={self.size}>"


@dataclass(slots=True, eq=False)
class DownChunk(Chunk):
    """A sealed filesystem chunk whose data is only in its file ("down").

    ``data`` is empty; ``size`` is the size of the data in the file.  The
    engine reads it back (:meth:`relaybit.pipeline.storage.FileStorage.read`)
    before an output flushes it: outputs never see a ``DownChunk``.
    """

    stored_size: int = 0

    @property
    def size(self) -> int:
        return self.stored_size

    @classmethod
    def of(cls, chunk: Chunk) -> DownChunk:
        """``chunk`` without its data (its size kept)."""
        if isinstance(chunk, DownChunk):
            return chunk
        return cls(
            chunk.tag,
            b"",
            chunk.records,
            chunk.input_name,
            chunk.id,
            chunk.created,
            chunk.size,
            route=chunk.route,
        )

    def __repr__(self) -> str:
        return (
            f"<DownChunk {self.id} tag={self.tag!r} records={self.records}"
            f" bytes={self.stored_size}>"
        )
