"""``Sender``: emit from any thread; a background thread runs the delivery loop."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from relaybit.sender.base import SenderBase, SenderStats, Timestamp, log
from relaybit.sender.buffer import Added
from relaybit.sender.delivery import Delivery

_OPEN: weakref.WeakSet[Sender] = weakref.WeakSet()


@atexit.register
def _close_open_senders() -> None:
    for sender in list(_OPEN):
        sender.close()


class Sender(SenderBase):
    """Send records to a Forward node or a tier of nodes, with failover; thread-safe.

    ``emit`` packs the record in the caller's thread and appends it to a bounded
    buffer; it never waits for the network.  A daemon thread running an asyncio
    loop flushes the buffer through an Upstream of Forward connections.  Close it
    (``close()``, ``with``, or at interpreter exit) to deliver what is buffered.
    The arguments are :class:`~relaybit.sender.base.SenderBase`'s.
    """

    def _setup(self) -> None:
        self.delivery = Delivery(self.config, self.buffer)
        self._loop = asyncio.new_event_loop()
        self._closed_stats: SenderStats | None = None
        self._close_lock = threading.Lock()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"relaybit-{self.config.spec.name}", daemon=True
        )
        self._thread.start()
        started.result()
        _OPEN.add(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed_stats is not None else "open"
        return f"<Sender {self.tag_prefix!r} {state} {self.buffer!r} {self.delivery.upstream!r}>"

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.delivery.start())
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def thread(self) -> threading.Thread:
        """The delivery thread (records logged from it are the sender's own)."""
        return self._thread

    # -- sending ------------------------------------------------------------------

    def emit(self, tag: str | None, record: Mapping[str, Any], time: Timestamp = None) -> bool:
        """Buffer one record under ``prefix.tag``; False when it was dropped (counted).

        ``time``: None (now, nanoseconds), an EventTime, int or float seconds, or a
        datetime.  Never waits for the network; with ``on_full="block"`` it may wait
        up to ``block_timeout`` for room in the buffer.
        """
        entry = self._pack(record, time)
        if entry is None:
            return False
        tag, key = self.full_tag(tag), self.balance_key(record)
        if self.config.on_full == "block" and threading.current_thread() is not self._thread:
            result = self.buffer.add_waiting(tag, entry, self.config.block_timeout, key)
        else:
            result = self.buffer.try_add(tag, entry, key)
        if result is Added.CHUNK_FULL:
            self._call_soon(self.delivery.wake)
        return self._accepted(result)

    def emit_with_time(self, tag: str | None, timestamp: Timestamp, record: Mapping[str, Any]) -> bool:  # fmt: skip
        """fluent-logger's ``emit_with_time(label, timestamp, data)``."""
        return self.emit(tag, record, timestamp)

    def flush(self) -> None:
        """Start a flush now instead of at the next ``flush_interval`` (does not wait)."""
        self._call_soon(self.delivery.wake)

    def _call_soon(self, callback: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: close() flushed already
            pass

    # -- state ----------------------------------------------------------------------

    def stats(self) -> SenderStats:
        """Counters and per-node status now."""
        if self._closed_stats is not None:  # refusals after close still count
            return self._stats(self._closed_stats.upstream, self.delivery.last_error)
        upstream = self._last_status
        if threading.current_thread() is self._thread:
            upstream = self.delivery.status()
        else:
            try:
                future = asyncio.run_coroutine_threadsafe(self._status(), self._loop)
                upstream = future.result(timeout=5.0)
            except (RuntimeError, TimeoutError, concurrent.futures.CancelledError):
                pass
        self._last_status = upstream
        return self._stats(upstream, self.delivery.last_error)

    async def _status(self) -> dict[str, Any]:
        return self.delivery.status()

    def close(self, timeout: float | None = None) -> SenderStats:
        """Deliver what can be within ``timeout`` seconds (``close_timeout``), then stop.

        Returns the final stats: ``undelivered`` counts the records given up.
        Later emits return False.  Idempotent.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("Sender.close() cannot be called from its own delivery thread")
        with self._close_lock:
            if self._closed_stats is not None:
                return self._closed_stats
            timeout = self.config.close_timeout if timeout is None else timeout
            self.buffer.closed = True
            upstream = self._last_status
            try:
                future = asyncio.run_coroutine_threadsafe(self._aclose(timeout), self._loop)
                self._undelivered, upstream = future.result(timeout=timeout + 10.0)
            except (TimeoutError, concurrent.futures.CancelledError, RuntimeError) as exc:
                log.error("%s: close did not finish: %r", self.config.spec.name, exc)
                self._undelivered = self.buffer.records
            self._call_soon(self._loop.stop)
            self._thread.join(timeout=10.0)
            _OPEN.discard(self)
            self._closed_stats = self._stats(upstream, self.delivery.last_error)
            return self._closed_stats

    async def _aclose(self, timeout: float) -> tuple[int, dict[str, Any]]:
        lost = await self.delivery.aclose(timeout)
        return lost, self.delivery.status()

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
