"""The sender's record buffer: msgpack entries per tag (and balancing key), bounded in bytes, thread-safe.

Callers (any thread) append packed entries; the delivery side takes
:class:`Batch` objects (one tag, entries back to back) and reports each one
delivered, to retry, or dropped.  Bytes count against the limit from
:meth:`RecordBuffer.try_add` until the batch holding them is confirmed or given
up, so a retried batch keeps its room.  No asyncio here: the caller's thread may
block on the buffer's condition (``on_full="block"``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum


class Added(Enum):
    """What :meth:`RecordBuffer.try_add` did with an entry."""

    BUFFERED = "buffered"
    #: buffered, and its tag now holds a full chunk: flush without waiting
    CHUNK_FULL = "chunk_full"
    #: not buffered: no room now
    FULL = "full"
    #: not buffered: larger than the whole buffer
    TOO_LARGE = "too_large"
    #: not buffered: the sender is closed
    CLOSED = "closed"


@dataclass(eq=False, slots=True)
class Batch:
    """Entries of one tag that travel as one PackedForward."""

    tag: str
    data: bytes
    records: int
    #: the balancing key (``balance hash`` on a record key); None: the tag
    key: str | None = None
    attempts: int = 0

    def __repr__(self) -> str:
        return f"<Batch {self.tag} records={self.records} bytes={len(self.data)}>"


@dataclass(eq=False, slots=True)
class _TagQueue:
    tag: str
    key: str | None
    ready: deque[Batch] = field(default_factory=deque)
    tail: bytearray = field(default_factory=bytearray)
    tail_records: int = 0
    busy: bool = False


@dataclass(slots=True)
class BufferCounters:
    """Record counts since the buffer was made."""

    emitted: int = 0
    delivered: int = 0
    retries: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


class RecordBuffer:
    """Entries per tag waiting for delivery, at most ``limit`` bytes (in flight included)."""

    def __init__(self, limit: int, chunk_size: int) -> None:
        if limit <= 0 or chunk_size <= 0:
            raise ValueError("buffer_limit and chunk_size must be positive")
        self.limit = limit
        self.chunk_size = chunk_size
        self.closed = False
        self.counters = BufferCounters()
        self._bytes = 0
        self._records = 0
        self._queues: dict[tuple[str, str | None], _TagQueue] = {}
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return (
            f"<RecordBuffer{state} records={self._records}"
            f" bytes={self._bytes}/{self.limit} tags={len(self._queues)}>"
        )

    @property
    def records(self) -> int:
        """Records held: waiting or in flight."""
        return self._records

    @property
    def size(self) -> int:
        """Bytes held: waiting or in flight."""
        return self._bytes

    # -- the caller's side ---------------------------------------------------

    def try_add(self, tag: str, entry: bytes, key: str | None = None) -> Added:
        """Append one packed entry to the queue of ``tag`` (and balancing ``key``)
        if it fits; never blocks."""
        with self._lock:
            return self._add(tag, entry, key)

    def add_waiting(self, tag: str, entry: bytes, timeout: float, key: str | None = None) -> Added:
        """Like :meth:`try_add`, waiting up to ``timeout`` seconds for room."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = self._add(tag, entry, key)
                left = deadline - time.monotonic()
                if result is not Added.FULL or left <= 0:
                    return result
                self._room.wait(left)

    def _add(self, tag: str, entry: bytes, key: str | None) -> Added:
        if self.closed:
            return Added.CLOSED
        size = len(entry)
        if size > self.limit:
            return Added.TOO_LARGE
        if self._bytes + size > self.limit:
            return Added.FULL
        queue = self._queues.get((tag, key))
        if queue is None:
            queue = self._queues[tag, key] = _TagQueue(tag, key)
        sealed = False
        if queue.tail and len(queue.tail) + size > self.chunk_size:
            self._seal(queue)
            sealed = True
        queue.tail += entry
        queue.tail_records += 1
        self._bytes += size
        self._records += 1
        self.counters.emitted += 1
        if len(queue.tail) >= self.chunk_size:
            self._seal(queue)
            sealed = True
        return Added.CHUNK_FULL if sealed else Added.BUFFERED

    def refuse(self, reason: str) -> None:
        """Count one record that was not buffered (``buffer_full``, ``closed`` ...)."""
        with self._lock:
            self._count_drop(reason, 1)

    # -- the delivery side ---------------------------------------------------

    def take(self, limit: int, *, tails: bool = True) -> list[Batch]:
        """Up to ``limit`` batches, one per tag without a batch in flight.

        Sealed (full or retried) batches come first; with ``tails`` the partly
        filled chunk of a tag is sealed and taken too.
        """
        batches: list[Batch] = []
        with self._lock:
            for queue in self._queues.values():
                if len(batches) >= limit:
                    break
                if queue.busy:
                    continue
                if not queue.ready and tails and queue.tail:
                    self._seal(queue)
                if queue.ready:
                    queue.busy = True
                    batches.append(queue.ready.popleft())
        return batches

    def delivered(self, batch: Batch) -> None:
        """A node confirmed ``batch``: free its room."""
        with self._lock:
            self.counters.delivered += batch.records
            self._release(batch)

    def retry(self, batch: Batch) -> None:
        """``batch`` was not delivered: it goes back to the head of its tag's queue."""
        with self._lock:
            batch.attempts += 1
            self.counters.retries += 1
            self._queue_of(batch).ready.appendleft(batch)

    def give_back(self, batch: Batch) -> None:
        """``batch`` was not tried to the end (cancelled): back to the head, no retry counted."""
        with self._lock:
            self._queue_of(batch).ready.appendleft(batch)

    def drop(self, batch: Batch, reason: str) -> None:
        """Give ``batch`` up for good, counted under ``reason``."""
        with self._lock:
            self._count_drop(reason, batch.records)
            self._release(batch)

    def discard_all(self, reason: str) -> int:
        """Drop every record not in flight (at close); returns how many."""
        with self._lock:
            count = 0
            for queue in self._queues.values():
                count += queue.tail_records + sum(b.records for b in queue.ready)
                self._bytes -= len(queue.tail) + sum(len(b.data) for b in queue.ready)
                queue.ready.clear()
                queue.tail.clear()
                queue.tail_records = 0
            self._records -= count
            self._queues = {t: q for t, q in self._queues.items() if q.busy}
            if count:
                self._count_drop(reason, count)
            self._room.notify_all()
            return count

    def has_ready(self) -> bool:
        """True when a tag without a batch in flight has a sealed batch."""
        with self._lock:
            return any(q.ready and not q.busy for q in self._queues.values())

    # -- internals -----------------------------------------------------------

    def _queue_of(self, batch: Batch) -> _TagQueue:
        queue = self._queues.get((batch.tag, batch.key))
        if queue is None:
            queue = self._queues[batch.tag, batch.key] = _TagQueue(batch.tag, batch.key)
        queue.busy = False
        return queue

    def _seal(self, queue: _TagQueue) -> None:
        queue.ready.append(Batch(queue.tag, bytes(queue.tail), queue.tail_records, queue.key))
        queue.tail.clear()
        queue.tail_records = 0

    def _release(self, batch: Batch) -> None:
        self._bytes -= len(batch.data)
        self._records -= batch.records
        queue = self._queues.get((batch.tag, batch.key))
        if queue is not None:
            queue.busy = False
            if not queue.ready and not queue.tail:
                del self._queues[batch.tag, batch.key]
        self._room.notify_all()

    def _count_drop(self, reason: str, records: int) -> None:
        dropped = self.counters.dropped
        dropped[reason] = dropped.get(reason, 0) + records
