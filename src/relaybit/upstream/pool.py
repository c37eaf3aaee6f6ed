"""The connection pool of one node (httpcore style: decide, then do the I/O).

:meth:`NodePool._assign` is synchronous and only changes lists: it expires idle
connections (closed, idle longer than ``net.keepalive_idle_timeout``, or used
``net.keepalive_max_recycle`` times) and hands queued waiters either an idle
connection or the right to open a new one, within ``net.max_worker_connections``
(0 = no limit).  It returns :class:`PoolActions`; the async methods perform them
(resolve waiters, close connections) and open connections through the opener,
whose call is bounded by ``net.connect_timeout`` by the caller (see
:func:`relaybit.upstream.dns.connect_any`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.errors import DeliveryError
from relaybit.upstream.connection import Connection
from relaybit.upstream.node import NetSettings, Node

Opener = Callable[[], Awaitable["Connection"]]


@dataclass(eq=False, slots=True)
class PooledConnection:
    """A connection and its bookkeeping; ``uses`` counts the flushes it carried."""

    connection: Connection
    created_at: float
    uses: int = 1
    idle_since: float = 0.0

    def __repr__(self) -> str:
        return f"<PooledConnection uses={self.uses} usable={self.connection.is_usable()}>"


@dataclass(eq=False, slots=True)
class _Waiter:
    future: asyncio.Future[PooledConnection | None]


@dataclass(slots=True)
class PoolActions:
    """What :meth:`NodePool._assign` decided: connections to close, waiters to wake.

    A grant of ``None`` means "open a new connection" (a slot was reserved).
    """

    close: list[PooledConnection] = field(default_factory=list)
    grants: list[tuple[_Waiter, PooledConnection | None]] = field(default_factory=list)


class NodePool:
    """Keepalive connections to one node."""

    def __init__(
        self,
        node: Node,
        opener: Opener,
        net: NetSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.node = node
        self.opener = opener
        self.net = net or NetSettings()
        self.clock = clock
        self._idle: deque[PooledConnection] = deque()
        self._active: set[PooledConnection] = set()
        self._opening = 0
        self._waiters: deque[_Waiter] = deque()
        self._closed = False
        self.opened = 0
        self.closed_count = 0

    # -- observation --------------------------------------------------------------

    @property
    def active(self) -> int:
        """Connections leased or being opened."""
        return len(self._active) + self._opening

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict[str, int]:
        """``{"active", "idle", "waiting", "opened", "closed"}`` (JSON-able)."""
        return {
            "active": self.active,
            "idle": self.idle,
            "waiting": self.waiting,
            "opened": self.opened,
            "closed": self.closed_count,
        }

    def __repr__(self) -> str:
        extra = f", waiting {self.waiting}" if self.waiting else ""
        closed = ", closed" if self._closed else ""
        return (
            f"<NodePool {self.node.name} [active {self.active}, idle {self.idle}{extra}{closed}]>"
        )

    # -- the decision -------------------------------------------------------------

    def _expired(self, pc: PooledConnection, now: float) -> bool:
        net = self.net
        if self._closed or not net.keepalive or not pc.connection.is_usable():
            return True
        if net.keepalive_max_recycle > 0 and pc.uses >= net.keepalive_max_recycle:
            return True
        return net.keepalive_idle_timeout > 0 and now - pc.idle_since >= net.keepalive_idle_timeout

    def _assign(self, now: float) -> PoolActions:
        """Expire idle connections and serve waiters; no I/O."""
        actions = PoolActions()
        keep: deque[PooledConnection] = deque()
        for pc in self._idle:
            (actions.close if self._expired(pc, now) else keep).append(pc)
        self._idle = keep
        limit = self.net.max_worker_connections
        while self._waiters and not self._closed:
            waiter = self._waiters[0]
            if waiter.future.done():
                self._waiters.popleft()
                continue
            if self._idle:
                pc = self._idle.pop()
                pc.uses += 1
                self._active.add(pc)
                actions.grants.append((waiter, pc))
            elif limit <= 0 or self.active < limit:
                self._opening += 1
                actions.grants.append((waiter, None))
            else:
                break
            self._waiters.popleft()
        return actions

    async def _perform(self, actions: PoolActions) -> None:
        for waiter, pc in actions.grants:
            waiter.future.set_result(pc)
        for pc in actions.close:
            await self._close(pc)

    async def _close(self, pc: PooledConnection) -> None:
        self.closed_count += 1
        with contextlib.suppress(Exception):
            await pc.connection.aclose()

    # -- leasing ------------------------------------------------------------------

    async def acquire(self) -> PooledConnection:
        """Lease a connection: an idle one, or a new one from the opener.

        Waits while ``net.max_worker_connections`` connections are in use.  Errors
        of the opener propagate (the reserved slot is given back).
        """
        if self._closed:
            raise DeliveryError("connect", f"node {self.node.name} is closed")
        waiter = _Waiter(asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        await self._perform(self._assign(self.clock.monotonic()))
        try:
            granted = await waiter.future
        except asyncio.CancelledError:
            await self._give_back(waiter)
            raise
        if granted is not None:
            return granted
        try:
            connection = await self.opener()
        except BaseException:
            self._opening -= 1
            await self._perform(self._assign(self.clock.monotonic()))
            raise
        self._opening -= 1
        self.opened += 1
        pc = PooledConnection(connection, created_at=self.clock.monotonic())
        self._active.add(pc)
        if self._closed:
            await self.release(pc, reuse=False)
            raise DeliveryError("connect", f"node {self.node.name} is closed")
        return pc

    async def _give_back(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        elif waiter.future.done() and not waiter.future.cancelled():
            granted = waiter.future.result()
            if granted is None:
                self._opening -= 1
            else:
                self._active.discard(granted)
                granted.idle_since = self.clock.monotonic()
                self._idle.append(granted)
        await self._perform(self._assign(self.clock.monotonic()))

    async def release(self, pc: PooledConnection, *, reuse: bool = True) -> None:
        """Return a leased connection: kept idle for reuse, or closed."""
        if pc not in self._active:
            return  # already closed by aclose()
        self._active.discard(pc)
        now = self.clock.monotonic()
        pc.idle_since = now
        if reuse and not self._expired(pc, now):
            self._idle.append(pc)
            actions = self._assign(now)
        else:
            actions = self._assign(now)
            actions.close.append(pc)
        await self._perform(actions)

    async def clear_idle(self) -> None:
        """Close every idle connection (they are presumed broken)."""
        actions = PoolActions(close=list(self._idle))
        self._idle.clear()
        await self._perform(actions)

    async def prune(self) -> None:
        """Close idle connections that expired."""
        await self._perform(self._assign(self.clock.monotonic()))

    async def aclose(self) -> None:
        """Close every connection (leased ones too) and fail the waiters."""
        self._closed = True
        actions = self._assign(self.clock.monotonic())
        actions.close.extend(self._active)
        self._active.clear()
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(
                    DeliveryError("connect", f"node {self.node.name} is closed")
                )
        self._waiters.clear()
        await self._perform(actions)
