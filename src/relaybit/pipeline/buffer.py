"""Per-input buffering: open chunks per tag, bytes held, ``mem_buf_limit`` backpressure.

The hot path appends the emitted bytes to the tag's open ``bytearray`` and
adds counts: no per-record work.  A chunk is sealed when it reaches
:data:`~relaybit.pipeline.chunk.CHUNK_SIZE_LIMIT` or at each flush tick.

``held`` counts the bytes of this input not yet delivered everywhere (open and
sealed chunks).  When it goes over ``mem_buf_limit`` the input is *paused*:
its ``emit`` waits until deliveries bring it back under the limit.  Pause and
resume are logged once per change and counted.

Memory inputs without their own ``mem_buf_limit`` share one
:class:`MemoryBudget` (``[SERVICE] storage.mem_limit``, 32 MB by default):
when the bytes they hold together go over it, the input that emits is paused
until deliveries bring the total back under it.  So a fast input (``tail``
reading a big file) reads only as fast as the outputs deliver, and memory does
not grow with the input (Fluent Bit grows without bound unless
``mem_buf_limit`` is set).
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


#: ``[SERVICE] storage.mem_limit`` default: bytes the memory inputs without a
#: ``mem_buf_limit`` may hold together before the one emitting is paused.
DEFAULT_MEM_LIMIT = 32 * 1024 * 1024


class MemoryBudget:
    """Bytes held by the inputs sharing one limit; resumes them when back under it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  #: 0: no limit
        self.held = 0
        self.members: list[InputBuffer] = []

    @property
    def over(self) -> bool:
        return bool(self.limit) and self.held > self.limit

    def release(self, size: int) -> None:
        """``size`` bytes were delivered; resume paused members once under the limit."""
        self.held -= size
        if self.held < self.limit or not self.limit:
            for member in self.members:
                if member.paused:
                    member.resume()

    def __repr__(self) -> str:
        return f"<MemoryBudget held={self.held} limit={self.limit} inputs={len(self.members)}>"


@dataclass(slots=True, eq=False)
class OpenChunk:
    """A chunk still taking records: the emitted byte strings, joined when sealed."""

    tag: str
    id: str
    created: float
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
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
        budget: MemoryBudget | None = None,
    ) -> None:
        self.name = name
        self.mem_buf_limit = mem_buf_limit
        #: the shared budget, used only when this input has no ``mem_buf_limit``
        self.budget = budget if not mem_buf_limit else None
        if self.budget is not None:
            self.budget.members.append(self)
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
        """Store ``data`` under ``tag``; returns the chunk this sealed, if any.

        A chunk is sealed once it reaches the size limit, or before ``data``
        when ``data`` fits a chunk but not the rest of this one (so chunks of
        big emits, like tail's blocks, are one emit each: no copy to join).
        """
        chunk = self.open.get(tag)
        size = len(data)
        sealed: Chunk | None = None
        if (
            chunk is not None
            and chunk.size
            and chunk.size + size > self.chunk_size_limit
            and size < self.chunk_size_limit
        ):
            sealed = self.seal(tag)
            chunk = None
        if chunk is None:
            chunk = OpenChunk(tag, new_stored_chunk_id(), self.clock.time())
            if self.storage is not None:
                chunk.file = self.storage.create(self.name, chunk.id, tag, chunk.created)
            self.open[tag] = chunk
        if chunk.file is not None:
            chunk.file.append(data, records)
        chunk.parts.append(data)
        chunk.size += size
        chunk.records += records
        self.held += size
        if self.budget is not None:
            self.budget.held += size
        if chunk.size >= self.chunk_size_limit:
            return self.seal(tag)
        return sealed

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
        parts = chunk.parts
        data = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
        return Chunk(chunk.tag, data, chunk.records, self.name, chunk.id, chunk.created)

    def seal_all(self) -> list[Chunk]:
        """Seal every open chunk (flush tick, pause, stop)."""
        sealed = [self.seal(tag) for tag in list(self.open)]
        return [c for c in sealed if c is not None]

    @property
    def over_limit(self) -> bool:
        """Over its own ``mem_buf_limit``, or (without one) over the shared budget."""
        if self.mem_buf_limit:
            return self.held > self.mem_buf_limit
        return self.budget is not None and self.budget.over

    def pause(self) -> None:
        """Mark the input paused (logged and counted once per change).

        Pauses by ``mem_buf_limit`` are logged at info, as Fluent Bit does;
        pauses by the shared ``storage.mem_limit`` at debug (they are the
        normal pace of a fast input).
        """
        if not self.paused:
            self.paused = True
            self.paused_count += 1
            self._resume.clear()
            if self.mem_buf_limit:
                log.info("%s paused (mem buf overlimit)", self.name)
            else:
                log.debug("%s paused (storage.mem_limit reached)", self.name)

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._resume.set()
            if self.mem_buf_limit:
                log.info("%s resume (mem buf overlimit)", self.name)
            else:
                log.debug("%s resume (storage.mem_limit)", self.name)

    async def wait_resumed(self) -> None:
        """Wait until :meth:`resume` (used by ``emit`` while paused)."""
        while self.paused:
            await self._resume.wait()

    def release(self, size: int) -> None:
        """A chunk of ``size`` bytes is done; resume when back under the limit."""
        self.held -= size
        self.chunks_pending -= 1
        if self.budget is not None:
            self.budget.release(size)
        elif self.paused and self.held < self.mem_buf_limit:
            self.resume()

    def status(self) -> dict[str, object]:
        return {
            "storage": self.storage_type,
            "mem_buf_limit": self.mem_buf_limit,
            "mem_limit_shared": self.budget.limit if self.budget is not None else 0,
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
