"""``AsyncSender``: the same sender for asyncio applications, in their own loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from relaybit.sender.base import SenderBase, SenderStats, Timestamp
from relaybit.sender.buffer import Added
from relaybit.sender.delivery import Delivery


class AsyncSender(SenderBase):
    """Send records with failover from asyncio code; delivery runs in the caller's loop.

    ``await emit(...)`` buffers the record and returns at once (with
    ``on_full="block"`` it may wait up to ``block_timeout`` for room).  Use
    ``async with AsyncSender(...)`` or ``await close()``.  Same arguments as
    :class:`~relaybit.sender.threaded.Sender`; not thread-safe (one loop).
    """

    def _setup(self) -> None:
        self.delivery = Delivery(self.config, self.buffer)
        self._started = False
        self._closed_stats: SenderStats | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed_stats is not None else "open"
        return (
            f"<AsyncSender {self.tag_prefix!r} {state} {self.buffer!r} {self.delivery.upstream!r}>"
        )

    async def start(self) -> None:
        """Start delivering in the running loop (the first ``emit`` does it too)."""
        if not self._started:
            self._started = True
            await self.delivery.start()

    async def emit(
        self, tag: str | None, record: Mapping[str, Any], time: Timestamp = None
    ) -> bool:
        """Buffer one record under ``prefix.tag``; False when it was dropped (counted)."""
        if not self._started and not self.buffer.closed:
            await self.start()
        entry = self._pack(record, time)
        if entry is None:
            return False
        tag, key = self.full_tag(tag), self.balance_key(record)
        result = self.buffer.try_add(tag, entry, key)
        room = self.delivery.room
        if result is Added.FULL and self.config.on_full == "block" and room is not None:
            try:
                async with asyncio.timeout(self.config.block_timeout):
                    while result is Added.FULL:
                        room.clear()
                        await room.wait()
                        result = self.buffer.try_add(tag, entry, key)
            except TimeoutError:
                result = self.buffer.try_add(tag, entry, key)
        if result is Added.CHUNK_FULL:
            self.delivery.wake()
        return self._accepted(result)

    def emit_nowait(
        self, tag: str | None, record: Mapping[str, Any], time: Timestamp = None
    ) -> bool:
        """``emit`` for synchronous code in the loop (callbacks); never waits.

        Needs a started sender (``await start()`` or an earlier ``emit``).
        """
        if not self._started and not self.buffer.closed:
            raise RuntimeError("AsyncSender.emit_nowait before start(): await sender.start()")
        entry = self._pack(record, time)
        if entry is None:
            return False
        result = self.buffer.try_add(self.full_tag(tag), entry, self.balance_key(record))
        if result is Added.CHUNK_FULL:
            self.delivery.wake()
        return self._accepted(result)

    def flush(self) -> None:
        """Start a flush now instead of at the next ``flush_interval`` (does not wait)."""
        self.delivery.wake()

    def stats(self) -> SenderStats:
        """Counters and per-node status now."""
        if self._closed_stats is not None:  # refusals after close still count
            return self._stats(self._closed_stats.upstream, self.delivery.last_error)
        return self._stats(self.delivery.status(), self.delivery.last_error)

    async def close(self, timeout: float | None = None) -> SenderStats:
        """Deliver what can be within ``timeout`` seconds (``close_timeout``), then stop.

        Returns the final stats; ``undelivered`` counts the records given up.
        """
        if self._closed_stats is not None:
            return self._closed_stats
        timeout = self.config.close_timeout if timeout is None else timeout
        self.buffer.closed = True
        if self._started:
            self._undelivered = await self.delivery.aclose(timeout)
        self._closed_stats = self._stats(self.delivery.status(), self.delivery.last_error)
        return self._closed_stats

    async def __aenter__(self) -> AsyncSender:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
