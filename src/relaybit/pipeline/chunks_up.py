"""``storage.max_chunks_up``: how many filesystem chunks may hold their data in memory.

A filesystem chunk is *up* while its data is in memory (an open chunk taking
records, or a sealed one ready to flush) and *down* when its data is only in
its file.  One :class:`ChunksUp` counts the up chunks of every filesystem
input of the agent (Fluent Bit's limit is global too).  Sans-IO: the engine
decides what goes down or waits; this only counts and tells.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``[SERVICE] storage.max_chunks_up`` default (Fluent Bit's).
DEFAULT_MAX_CHUNKS_UP = 128


class ChunksUp:
    """The count of filesystem chunks up in memory, bounded by ``limit``."""

    def __init__(self, limit: int = DEFAULT_MAX_CHUNKS_UP) -> None:
        self.limit = max(1, limit)
        self.count = 0
        self.peak = 0  #: the highest count seen (status, tests)
        #: called after a slot is released (the engine wakes waiters, resumes inputs)
        self.on_release: Callable[[], None] | None = None

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.count >= self.limit:
            return False
        self.acquire()
        return True

    def acquire(self) -> None:
        """Take a slot (the caller checked there is one, or made one)."""
        self.count += 1
        if self.count > self.peak:
            self.peak = self.count

    def release(self) -> None:
        """Give a slot back (a chunk went down, was done, or was discarded)."""
        self.count -= 1
        if self.on_release is not None:
            self.on_release()

    def __repr__(self) -> str:
        return f"<ChunksUp {self.count}/{self.limit} peak={self.peak}>"
