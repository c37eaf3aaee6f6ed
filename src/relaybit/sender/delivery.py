"""The asyncio side of a sender: batches from the buffer -> Upstream -> ForwardClient.

One :class:`Delivery` runs in one event loop (the sender's thread, or the
application's loop for ``AsyncSender``).  Every ``flush_interval`` (or at once
when a tag holds a full chunk) it takes batches, one in flight per tag (records
of a tag keep their order), at most ``max_in_flight`` at a time, and delivers
each through the Upstream: failover to the next node at once, ejection,
standby/weights/hash as the spec says.  A batch no node took goes back to the
head of its queue and the sender waits (exponential backoff with jitter) before
the next try; a confirmed batch frees its room in the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from relaybit.errors import ConfigError, DeliveryError, NoHealthyNode, PermanentDeliveryError
from relaybit.logging import counted
from relaybit.net.forward_client import ForwardClient
from relaybit.plugins.outputs.forward.options import ForwardNodeSettings
from relaybit.plugins.outputs.forward.output import heartbeat_probe
from relaybit.plugins.outputs.forward.session import connect_node, send_to_node
from relaybit.plugins.outputs.upstream_support import FailureLog
from relaybit.sender.buffer import Batch, RecordBuffer
from relaybit.sender.config import SenderConfig
from relaybit.upstream.node import Node
from relaybit.upstream.upstream import Connection, Upstream

log = logging.getLogger("relaybit.sender")


class Delivery:
    """Flushes a :class:`RecordBuffer` through an :class:`Upstream` of Forward nodes."""

    def __init__(
        self, config: SenderConfig, buffer: RecordBuffer, *, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.buffer = buffer
        self.upstream = Upstream(
            config.spec,
            self._connect,
            net=config.net,
            probe=heartbeat_probe,
            owner=config.spec.name,
        )
        self.failed_flushes = 0
        self.last_error: str | None = None
        self._rng = rng or random.Random()
        self._failures = 0  # consecutive failed flushes (backoff)
        self._retry_at = 0.0  # loop time before which no batch is tried
        self._settings: dict[str, tuple[Node, ForwardNodeSettings]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        #: set whenever a batch leaves the buffer (room for ``on_full="block"`` waiters)
        self.room: asyncio.Event | None = None
        self._log = FailureLog(log, config.spec.name)

    def __repr__(self) -> str:
        running = "running" if self._runner is not None else "stopped"
        return (
            f"<Delivery {self.config.spec.name} {running} in_flight={len(self._tasks)}"
            f" {self.upstream!r}>"
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop this delivery runs in (None before :meth:`start`)."""
        return self._loop

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the Upstream (health checks) and the flush loop in the running loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self.room = asyncio.Event()
        await self.upstream.start()
        self._runner = self._loop.create_task(self._run(), name=f"relaybit-{self.config.spec.name}")

    def wake(self) -> None:
        """Flush now (call in the loop's thread)."""
        if self._wake is not None:
            self._wake.set()

    async def aclose(self, timeout: float) -> int:
        """Deliver what can be delivered within ``timeout`` seconds, then stop.

        Returns the number of records given up (counted as dropped ``close``).
        """
        assert self._loop is not None and self._progress is not None
        deadline = self._loop.time() + max(0.0, timeout)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        while self.buffer.records:
            now = self._loop.time()
            if now >= deadline:
                break
            self._progress.clear()
            self._dispatch(tails=True)
            wait = deadline - now
            if not self._tasks:
                wait = min(wait, max(0.0, self._retry_at - now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._progress.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        lost = self.buffer.discard_all("close")
        await self.upstream.stop()
        if lost:
            log.warning(
                "%s: closed with %s not delivered (last error: %s)",
                self.config.spec.name,
                counted(lost, "record"),
                self.last_error or "none",
            )
        return lost

    # -- flushing ----------------------------------------------------------------

    async def _run(self) -> None:
        assert self._loop is not None and self._wake is not None
        interval = self.config.flush_interval
        while True:
            wait = max(interval, self._retry_at - self._loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            self._dispatch(tails=True)

    def _dispatch(self, *, tails: bool) -> None:
        assert self._loop is not None
        if self._loop.time() < self._retry_at:
            return
        free = self.config.max_in_flight - len(self._tasks)
        if free <= 0:
            return
        for batch in self.buffer.take(free, tails=tails):
            task = self._loop.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: Batch) -> None:
        try:
            await self.upstream.deliver(
                self._sender(batch),
                key=batch.tag if batch.key is None else batch.key,
                records=batch.records,
                size=len(batch.data),
            )
        except asyncio.CancelledError:
            self.buffer.give_back(batch)
            raise
        except PermanentDeliveryError as exc:
            self.last_error = str(exc)
            log.error("%s: %r rejected for good: %s", self.config.spec.name, batch, exc)
            self.buffer.drop(batch, "rejected")
        except NoHealthyNode as exc:
            self._failed(batch, exc)
        except Exception as exc:  # a bug must not lose the batch nor kill the loop
            log.exception("%s: flushing %r failed", self.config.spec.name, batch)
            self._failed(batch, NoHealthyNode(f"{type(exc).__name__}: {exc}"))
        else:
            self._failures = 0
            self._retry_at = 0.0
            self._log.delivered()
            self.buffer.delivered(batch)
            if self.buffer.has_ready():
                self._dispatch(tails=False)  # full chunks go on at once
        self._signal()

    def _failed(self, batch: Batch, exc: NoHealthyNode) -> None:
        self.failed_flushes += 1
        self.last_error = str(exc)
        self._log.failed(repr(batch), exc)
        limit = self.config.retry_limit
        if limit is not None and batch.attempts >= limit:
            log.error(
                "%s: %r dropped after %s: %s",
                self.config.spec.name,
                batch,
                counted(batch.attempts, "retry", "retries"),
                exc,
            )
            self.buffer.drop(batch, "retry_limit")
            return
        self.buffer.retry(batch)
        self._failures += 1
        assert self._loop is not None
        wait = min(
            self.config.retry_max_wait, self.config.retry_wait * 2 ** min(self._failures - 1, 30)
        )
        self._retry_at = self._loop.time() + wait * (0.5 + self._rng.random() / 2)

    def _signal(self) -> None:
        for event in (self._progress, self.room):
            if event is not None:
                event.set()

    # -- the Forward side ----------------------------------------------------------

    def _node_settings(self, node: Node) -> ForwardNodeSettings:
        cached = self._settings.get(node.name)
        if cached is not None and cached[0] is node:
            return cached[1]
        settings = self.config.node_settings(node)
        self._settings[node.name] = (node, settings)
        return settings

    async def _connect(self, node: Node, host: str, port: int) -> ForwardClient:
        try:
            s = self._node_settings(node)
            ssl = self.config.ssl_for(s)
        except ConfigError as exc:
            raise DeliveryError("tls", f"{node.name}: {exc}") from None
        return await connect_node(node, host, port, s, ssl, self.config.net)

    def _sender(self, batch: Batch) -> Callable[[Node, Connection], Awaitable[None]]:
        async def send(node: Node, connection: Connection) -> None:
            await send_to_node(
                self._node_settings(node), connection, batch.tag, batch.data, batch.records
            )

        return send

    def status(self) -> dict[str, Any]:
        """The Upstream's status (call in the loop's thread)."""
        return self.upstream.status()
