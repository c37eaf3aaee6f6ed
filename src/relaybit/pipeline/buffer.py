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

Filesystem inputs share :class:`~relaybit.pipeline.chunks_up.ChunksUp`
(``storage.max_chunks_up``): an open chunk keeps its data in memory only when
it got a slot; otherwise it is created *down* (its blocks go to its file only)
and is sealed into a :class:`~relaybit.pipeline.chunk.DownChunk` that the
engine reads back when an output is ready for it.  With
``storage.pause_on_chunks_overlimit`` the engine pauses the input instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.pipeline.chunk import CHUNK_SIZE_LIMIT, Chunk, DownChunk
from relaybit.pipeline.chunks_up import ChunksUp
from relaybit.pipeline.storage import ChunkFile, FileStorage
from relaybit.pipeline.storage_guard import StorageWriteError

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
    route: str = ""
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    records: int = 0
    file: ChunkFile | None = None
    #: its data is kept in memory (always for memory inputs; filesystem: it got a slot)
    up: bool = True


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
        chunks_up: ChunksUp | None = None,
        pause_on_chunks_overlimit: bool = False,
    ) -> None:
        self.name = name
        self.mem_buf_limit = mem_buf_limit
        #: the shared budget, used only when this input has no ``mem_buf_limit``
        self.budget = budget if not mem_buf_limit else None
        if self.budget is not None:
            self.budget.members.append(self)
        self.storage = storage
        #: filesystem inputs: the agent's ``storage.max_chunks_up`` slots
        self.chunks_up = chunks_up if storage is not None else None
        #: ``storage.pause_on_chunks_overlimit`` (filesystem inputs only)
        self.pause_on_chunks_overlimit = pause_on_chunks_overlimit and storage is not None
        #: ``storage.sync full``: ``emit`` awaits :attr:`last_file`'s sync
        self.sync_full = storage is not None and storage.sync_full
        self.last_file: ChunkFile | None = None
        self.chunk_size_limit = chunk_size_limit
        self.clock = clock
        #: open chunks by (tag, input route)
        self.open: dict[tuple[str, str], OpenChunk] = {}
        self.held = 0  #: bytes buffered and not yet delivered everywhere
        self.chunks_pending = 0  #: sealed chunks not yet done
        self.records = 0  #: records accepted (metrics)
        self.bytes = 0  #: bytes accepted (metrics)
        self.paused_count = 0
        self.paused = False
        #: why it is paused: "mem_buf_limit", "storage.mem_limit", "storage.max_chunks_up"
        #: or "storage write error"
        self.pause_reason = ""
        self.unrouted_records = 0
        self._resume = asyncio.Event()

    @property
    def storage_type(self) -> str:
        return "memory" if self.storage is None else "filesystem"

    def append(self, tag: str, data: bytes, records: int, route: str = "") -> Chunk | None:
        """Store ``data`` under ``tag`` (and input ``route``); returns the chunk this
        sealed, if any.

        A chunk is sealed once it reaches the size limit, or before ``data``
        when ``data`` fits a chunk but not the rest of this one (so chunks of
        big emits, like tail's blocks, are one emit each: no copy to join).

        A chunk file write that fails raises :class:`StorageWriteError`:
        ``data`` is not stored (the torn block is cut back), and a chunk sealed
        before the write travels in the exception.
        """
        key = (tag, route)
        chunk = self.open.get(key)
        size = len(data)
        sealed: Chunk | None = None
        if (
            chunk is not None
            and chunk.size
            and chunk.size + size > self.chunk_size_limit
            and size < self.chunk_size_limit
        ):
            sealed = self.seal(key)
            chunk = None
        if chunk is None:
            chunk = OpenChunk(tag, new_stored_chunk_id(), self.clock.time(), route)
            if self.storage is not None:
                try:
                    chunk.file = self.storage.create(self.name, chunk.id, tag, chunk.created, route)
                except OSError as exc:  # nothing stored; the file is removed
                    path = self.storage.path_of(self.name, chunk.id)
                    raise StorageWriteError(
                        exc, path, [(tag, data, records, route)], sealed
                    ) from exc
                if self.chunks_up is not None:
                    chunk.up = self.chunks_up.try_acquire()
            self.open[key] = chunk
        if chunk.file is not None:
            try:
                chunk.file.append(data, records)
            except OSError as exc:  # cut back to the last good block: nothing stored
                raise StorageWriteError(
                    exc, chunk.file.path, [(tag, data, records, route)], sealed
                ) from exc
            self.last_file = chunk.file
            if chunk.up:
                chunk.parts.append(data)
        else:
            chunk.parts.append(data)
        chunk.size += size
        chunk.records += records
        self.held += size
        if self.budget is not None:
            self.budget.held += size
        if chunk.size >= self.chunk_size_limit:
            return self.seal(key)
        return sealed

    def seal(self, key: tuple[str, str]) -> Chunk | None:
        """Close the open chunk of ``(tag, route)`` into an immutable :class:`Chunk`."""
        chunk = self.open.pop(key, None)
        if chunk is None:
            return None
        if chunk.file is not None:
            chunk.file.close_later(sync=bool(chunk.records))
            if not chunk.records:
                chunk.file.path.unlink(missing_ok=True)
            if chunk.up and self.chunks_up is not None and not chunk.records:
                self.chunks_up.release()
                chunk.up = False
        if not chunk.records:
            return None
        self.chunks_pending += 1
        if not chunk.up:
            return DownChunk(
                chunk.tag,
                b"",
                chunk.records,
                self.name,
                chunk.id,
                chunk.created,
                chunk.size,
                route=chunk.route,
            )
        parts = chunk.parts
        data = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
        return Chunk(
            chunk.tag, data, chunk.records, self.name, chunk.id, chunk.created, route=chunk.route
        )

    def seal_all(self) -> list[Chunk]:
        """Seal every open chunk (flush tick, pause, stop)."""
        sealed = [self.seal(key) for key in list(self.open)]
        return [c for c in sealed if c is not None]

    @property
    def chunks_overlimit(self) -> bool:
        """``storage.pause_on_chunks_overlimit`` and every ``max_chunks_up`` slot taken."""
        return self.pause_on_chunks_overlimit and self.chunks_up is not None and self.chunks_up.full

    @property
    def over_limit(self) -> bool:
        """Over its own ``mem_buf_limit``, or (without one) over the shared budget."""
        if self.mem_buf_limit:
            return self.held > self.mem_buf_limit
        return self.budget is not None and self.budget.over

    def pause(self, *, chunks: bool = False, storage: bool = False) -> None:
        """Mark the input paused (logged and counted once per change).

        Pauses by ``mem_buf_limit`` are logged at info, as Fluent Bit does;
        pauses by the shared ``storage.mem_limit`` at debug (they are the
        normal pace of a fast input); ``chunks``: paused by
        ``storage.pause_on_chunks_overlimit``, logged at warning as Fluent Bit;
        ``storage``: a chunk write failed (disk full), logged once per storage
        by :class:`~relaybit.pipeline.storage_guard.StorageGuard`.
        """
        if self.paused:
            return
        self.paused = True
        self.paused_count += 1
        self._resume.clear()
        if storage:  # StorageGuard logs the one line for the whole storage
            self.pause_reason = "storage write error"
            log.debug("%s paused (storage write error)", self.name)
        elif chunks:
            self.pause_reason = "storage.max_chunks_up"
            assert self.chunks_up is not None
            log.warning(
                "%s paused (storage buf overlimit %d/%d)",
                self.name,
                self.chunks_up.count,
                self.chunks_up.limit,
            )
        elif self.mem_buf_limit:
            self.pause_reason = "mem_buf_limit"
            log.info("%s paused (mem buf overlimit)", self.name)
        else:
            self.pause_reason = "storage.mem_limit"
            log.debug("%s paused (storage.mem_limit reached)", self.name)

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        self._resume.set()
        reason, self.pause_reason = self.pause_reason, ""
        if reason == "storage.max_chunks_up":
            assert self.chunks_up is not None
            log.info(
                "%s resume (storage buf overlimit %d/%d)",
                self.name,
                self.chunks_up.count,
                self.chunks_up.limit,
            )
        elif reason == "mem_buf_limit":
            log.info("%s resume (mem buf overlimit)", self.name)
        elif reason == "storage write error":
            log.debug("%s resume (storage write error)", self.name)
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
        elif (
            self.paused and self.pause_reason == "mem_buf_limit" and self.held < self.mem_buf_limit
        ):
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
            "pause_reason": self.pause_reason,
            "pause_on_chunks_overlimit": self.pause_on_chunks_overlimit,
            "open_chunks_up": sum(1 for c in self.open.values() if c.file is not None and c.up),
        }

    def __repr__(self) -> str:
        state = " paused" if self.paused else ""
        return (
            f"<InputBuffer {self.name} {self.storage_type} held={self.held}"
            f" limit={self.mem_buf_limit} open={len(self.open)}{state}>"
        )
