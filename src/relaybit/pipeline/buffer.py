"""Per-input buffering: open chunks per tag, bytes held, ``mem_buf_limit`` backpressure.

The hot path appends the emitted bytes to the tag's open ``bytearray`` and
adds counts: no per-record work.  A chunk is sealed when it reaches
:data:`~relaybit.pipeline.chunk.CHUNK_SIZE_LIMIT` or at each flush tick.

``held`` counts the bytes of this input not yet delivered everywhere (open and
sealed chunks).  When it goes over ``mem_buf_limit`` the input is *paused*:
its ``emit`` waits until deliveries bring it back under the limit.  Pause and
resume are logged once per change and counted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.pipeline.chunk import CHUNK_SIZE_LIMIT, Chunk
from relaybit.pipeline.storage import ChunkFile, FileStorage

log = logging.getLogger("relaybit.input")

_seq = itertools.count(1)


def new_stored_chunk_id() -> str:
    """A chunk id unique across restarts that sorts in creation order."""
    return f"{time.time_ns():016x}-{next(_seq) & 0xFFFFFF:06x}"


@dataclass(slots=True, eq=False)
class OpenChunk:
    """A chunk still taking records."""

    tag: str
    id: str
    created: float
    data: bytearray = field(default_factory=bytearray)
    records: int = 0
    file: ChunkFile | None = None


class InputBuffer:
    """One input's open chunks, memory accounting and pause state."""

    def __init__(
        self,
        name: str,
        *,
        mem_buf_limit: int = 0,
        storage: FileStorage | None = None,
        chunk_size_limit: int = CHUNK_SIZE_LIMIT,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self.mem_buf_limit = mem_buf_limit
        self.storage = storage
        self.chunk_size_limit = chunk_size_limit
        self.clock = clock
        self.open: dict[str, OpenChunk] = {}
        self.held = 0  #: bytes buffered and not yet delivered everywhere
        self.chunks_pending = 0  #: sealed chunks not yet done
        self.records = 0  #: records accepted (metrics)
        self.bytes = 0  #: bytes accepted (metrics)
        self.paused_count = 0
        self.paused = False
        self.unrouted_records = 0
        self._resume = asyncio.Event()

    @property
    def storage_type(self) -> str:
        return "memory" if self.storage is None else "filesystem"

    def append(self, tag: str, data: bytes, records: int) -> Chunk | None:
        """Store ``data`` under ``tag``; returns the chunk if this filled it (sealed)."""
        chunk = self.open.get(tag)
        if chunk is None:
            chunk = OpenChunk(tag, new_stored_chunk_id(), self.clock.time())
            if self.storage is not None:
                chunk.file = self.storage.create(self.name, chunk.id, tag, chunk.created)
            self.open[tag] = chunk
        if chunk.file is not None:
            chunk.file.append(data, records)
        chunk.data += data
        chunk.records += records
        self.held += len(data)
        if len(chunk.data) >= self.chunk_size_limit:
            return self.seal(tag)
        return None

    def seal(self, tag: str) -> Chunk | None:
        """Close the open chunk of ``tag`` into an immutable :class:`Chunk`."""
        chunk = self.open.pop(tag, None)
        if chunk is None or not chunk.records:
            if chunk is not None and chunk.file is not None:
                chunk.file.close(sync=False)
                chunk.file.path.unlink(missing_ok=True)
            return None
        if chunk.file is not None:
            chunk.file.close(sync=True)
        self.chunks_pending += 1
        return Chunk(
            chunk.tag, bytes(chunk.data), chunk.records, self.name, chunk.id, chunk.created
        )

    def seal_all(self) -> list[Chunk]:
        """Seal every open chunk (flush tick, pause, stop)."""
        sealed = [self.seal(tag) for tag in list(self.open)]
        return [c for c in sealed if c is not None]

    @property
    def over_limit(self) -> bool:
        return bool(self.mem_buf_limit) and self.held > self.mem_buf_limit

    def pause(self) -> None:
        """Mark the input paused (logged and counted once per change)."""
        if not self.paused:
            self.paused = True
            self.paused_count += 1
            self._resume.clear()
            log.info("%s paused (mem buf overlimit)", self.name)

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._resume.set()
            log.info("%s resume (mem buf overlimit)", self.name)

    async def wait_resumed(self) -> None:
        """Wait until :meth:`resume` (used by ``emit`` while paused)."""
        while self.paused:
            await self._resume.wait()

    def release(self, size: int) -> None:
        """A chunk of ``size`` bytes is done; resume when back under the limit."""
        self.held -= size
        self.chunks_pending -= 1
        if self.paused and self.held < self.mem_buf_limit:
            self.resume()

    def status(self) -> dict[str, object]:
        return {
            "storage": self.storage_type,
            "mem_buf_limit": self.mem_buf_limit,
            "buffered_bytes": self.held,
            "open_chunks": len(self.open),
            "pending_chunks": self.chunks_pending,
            "paused": self.paused,
        }

    def __repr__(self) -> str:
        state = " paused" if self.paused else ""
        return (
            f"<InputBuffer {self.name} {self.storage_type} held={self.held}"
            f" limit={self.mem_buf_limit} open={len(self.open)}{state}>"
        )
