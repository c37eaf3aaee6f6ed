"""A datagram socket (UDP, Unix) read into a bounded queue and emitted in batches.

A datagram has no one to answer, so an input cannot hold its sender while the
pipeline pauses it (``mem_buf_limit``, a full disk): what it has read waits in
memory.  :class:`DatagramReader` bounds that memory.  The socket is read (as
many datagrams as are ready, up to :data:`READS_PER_WAKEUP` a turn) into a
queue that one task empties, a batch per ``emit``.  When the emit waits (the
input is paused) and the queue reaches :data:`MAX_HELD` datagrams or
:data:`MAX_HELD_BYTES` bytes, the reader **stops reading the socket** until the
queue is down to half of that:

- UDP: the kernel keeps what the socket's receive buffer holds
  (``receive_buffer_size``) and drops the rest; it counts those drops per
  socket, and the input reports them (``dropped_datagrams``, read from
  ``/proc/net/udp``/``udp6`` on Linux; ``None`` where it cannot be read);
- Unix datagram sockets: the kernel does not drop; the senders wait (a blocking
  ``send``) or get ``EAGAIN``, as with any reader that does not keep up.

Each episode logs two lines whatever the number of datagrams: one when the
reading stops, one when it has gone on again for :data:`STABLE_AFTER` seconds
(with the datagrams the kernel dropped meanwhile); a pause that comes back
within that second is the same episode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from relaybit.logging import counted, sized

#: datagrams held in memory while the emit waits, at most
MAX_HELD = 1000
#: bytes of datagrams held in memory while the emit waits, at most
MAX_HELD_BYTES = 4 * 1024 * 1024
#: datagrams read per event-loop turn (then the loop serves others)
READS_PER_WAKEUP = 256
#: datagrams (and bytes, :data:`BATCH_BYTES`) per emit
BATCH = 512
BATCH_BYTES = 1024 * 1024
#: reading this long after a stop ends the episode (its "reading again" line)
STABLE_AFTER = 1.0

Datagram = tuple[bytes, Any]


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for ``sock`` (its receive buffer full), or None
    where that cannot be read (not Linux, not a UDP socket)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.fileno() < 0:
        return None
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    name = "/proc/net/udp" if sock.family == socket.AF_INET else "/proc/net/udp6"
    try:
        with open(name, encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                fields = line.split()
                if len(fields) >= 13 and fields[9] == inode:
                    return int(fields[-1])
    except (OSError, ValueError):
        return None
    return None


class DatagramReader:
    """Reads ``sock`` into a bounded queue; ``handle(batch)`` emits each batch in turn."""

    def __init__(
        self,
        sock: socket.socket,
        handle: Callable[[list[Datagram]], Awaitable[None]],
        logger: logging.Logger,
        *,
        max_size: int,
        max_held: int | None = None,
        max_held_bytes: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sock = sock
        self.handle = handle
        self.logger = logger
        #: bytes read per datagram: one more than the largest message, so a longer one shows
        self.read_size = max_size + 1
        self.max_held = MAX_HELD if max_held is None else max_held
        self.max_held_bytes = MAX_HELD_BYTES if max_held_bytes is None else max_held_bytes
        self._monotonic = monotonic
        self._queue: deque[Datagram] = deque()
        self._in_flight = 0  #: datagrams of the batch being emitted
        self.held_bytes = 0
        self.peak_held = 0  #: most datagrams held at once
        self.datagrams = 0  #: datagrams read
        self.read_errors = 0
        self.reading = False
        self.stops = 0  #: times the reading stopped (the queue was full)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        #: the episode being logged: when it began, its stops, the kernel's drops then
        self._episode_since: float | None = None
        self._episode_stops = 0
        self._episode_drops: int | None = None
        self._ending: asyncio.TimerHandle | None = None
        self._initial_drops = kernel_drops(sock) or 0

    @property
    def held(self) -> int:
        """Datagrams read and not yet emitted (queued, or in the emit under way)."""
        return len(self._queue) + self._in_flight

    @property
    def dropped(self) -> int | None:
        """Datagrams the kernel dropped for this socket since it was opened (UDP, Linux)."""
        drops = kernel_drops(self.sock)
        return None if drops is None else max(0, drops - self._initial_drops)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start_reading()
        self._pump = self._loop.create_task(self._run(), name="relaybit-datagrams")

    async def stop(self) -> None:
        """Stop reading, emit what is held, close the socket."""
        self._closing = True
        self._stop_reading()
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        if self._episode_since is not None:
            self._end_episode()
        self._wake.set()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        self.sock.close()

    def _start_reading(self) -> None:
        if self.reading or self._closing or self._loop is None:
            return
        self._loop.add_reader(self.sock.fileno(), self._readable)
        self.reading = True
        if self._episode_since is not None and self._ending is None:
            self._ending = self._loop.call_later(STABLE_AFTER, self._end_episode)

    def _stop_reading(self) -> None:
        if not self.reading or self._loop is None:
            return
        self._loop.remove_reader(self.sock.fileno())
        self.reading = False

    def _readable(self) -> None:
        queue = self._queue
        for _ in range(READS_PER_WAKEUP):
            try:
                data, addr = self.sock.recvfrom(self.read_size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors reported on the socket: go on
                self.read_errors += 1
                if self.read_errors == 1:
                    self.logger.warning("reading the socket failed (%s); going on", exc)
                break
            queue.append((data, addr))
            self.held_bytes += len(data)
            self.datagrams += 1
            if self.held >= self.max_held or self.held_bytes >= self.max_held_bytes:
                self._full()
                break
        if self.held > self.peak_held:
            self.peak_held = self.held
        if queue:
            self._wake.set()

    def _full(self) -> None:
        """The queue is full (the emit waits): stop reading, logged once per episode."""
        self._stop_reading()
        self.stops += 1
        if self._ending is not None:  # full again soon after reading again: same episode
            self._ending.cancel()
            self._ending = None
        if self._episode_since is not None:
            self._episode_stops += 1
            self.logger.debug("stopped reading again (%d datagrams held)", self.held)
            return
        self._episode_since = self._monotonic()
        self._episode_stops = 1
        self._episode_drops = self.dropped
        if self.sock.family == socket.AF_UNIX:
            then = "its senders wait until it is read again"
        else:
            then = (
                "the kernel keeps what the socket's receive buffer holds and drops the rest"
                " (counted in 'dropped_datagrams')"
            )
        self.logger.warning(
            "the input is paused and holds %s (%s); the socket is not read meanwhile: %s",
            counted(self.held, "datagram"),
            sized(self.held_bytes),
            then,
        )

    def _end_episode(self) -> None:
        self._ending = None
        if self._episode_since is None:
            return
        took = self._monotonic() - self._episode_since - (0.0 if self._closing else STABLE_AFTER)
        stops, self._episode_stops = self._episode_stops, 0
        before, self._episode_drops = self._episode_drops, None
        self._episode_since = None
        now = self.dropped
        dropped = (
            ""
            if now is None or before is None
            else f"; the kernel dropped {counted(now - before, 'datagram')} meanwhile"
        )
        again = f" (stopped {counted(stops - 1, 'more time')})" if stops > 1 else ""
        self.logger.warning(
            "reading the socket again after %.1f s%s%s", max(0.0, took), again, dropped
        )

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[Datagram] = []
            size = 0
            while queue and len(batch) < BATCH and size < BATCH_BYTES:
                item = queue.popleft()
                batch.append(item)
                size += len(item[0])
            self._in_flight = len(batch)
            try:
                await self.handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the handler counts its own errors: never stop the pump
                self.logger.debug("handling %d datagrams failed", len(batch), exc_info=True)
            finally:
                self.held_bytes -= size
                self._in_flight = 0
            if (
                not self.reading
                and len(queue) <= self.max_held // 2
                and self.held_bytes <= self.max_held_bytes // 2
            ):
                self._start_reading()

    def status(self) -> dict[str, Any]:
        return {
            "reading": self.reading,
            "held_datagrams": self.held,
            "held_bytes": self.held_bytes,
            "peak_held_datagrams": self.peak_held,
            "max_held_datagrams": self.max_held,
            "reading_stops": self.stops,
        }

    def __repr__(self) -> str:
        state = "reading" if self.reading else "not reading"
        return f"<DatagramReader {state} held={self.held} stops={self.stops}>"
