"""The Upstream facade: every upstream-capable output delivers through it.

CONTRACT (fixed; the implementation fills in the bodies):

- An output builds one ``Upstream`` from its ``UpstreamSpec`` (an upstream
  file, or a one-node spec made from ``host``/``port``), its ``NetSettings``, and a
  **connector**: ``async connector(node, host, port) -> Connection`` that opens a
  connection to one resolved address of the node and does everything needed
  before data can flow (TCP, TLS, Forward handshake ...).  The connector raises
  ``DeliveryError`` (kind ``connect``/``timeout``/``tls``/``handshake``/``auth``)
  on failure.  Optionally a **probe** ``async probe(node, connection)`` used by
  active health checks (forward: send a heartbeat; http: GET a path).
- ``await upstream.deliver(send, key=..., records=n, size=b)`` performs one flush:
  the balancer orders the candidate nodes; for each node a pooled connection is
  leased (or the connector opens one, trying every DNS address), and
  ``await send(node, connection)`` writes the data and waits for confirmation
  (ack / 2xx).  A ``DeliveryError`` with ``failover`` true, or an ``OSError`` or
  ``asyncio.TimeoutError`` from ``send``, closes that connection, counts the
  failure on the node (passive health) and moves on at once to the next
  candidate.  A ``PermanentDeliveryError`` is re-raised at once (no failover).
  When every candidate failed, ``NoHealthyNode`` is raised (the output returns
  ``FlushResult.RETRY``).  On success the connection goes back to the pool.
- ``start()`` starts active health checks; ``stop()`` closes every connection.
- ``status()`` returns a JSON-able dict: per node state, in-flight, counters,
  last error.  ``repr()`` is a one-line summary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.upstream.node import NetSettings, Node, UpstreamSpec


class Connection(Protocol):
    """A connection opened by a connector, owned by the node's pool."""

    def is_usable(self) -> bool:
        """False once closed or broken; unusable connections are not reused."""
        ...

    async def aclose(self) -> None: ...


Connector = Callable[[Node, str, int], Awaitable[Connection]]
Probe = Callable[[Node, Connection], Awaitable[None]]
Send = Callable[[Node, Connection], Awaitable[None]]


class Upstream:
    """A set of nodes with balancing, failover, health and connection pools."""

    def __init__(
        self,
        spec: UpstreamSpec,
        connector: Connector,
        *,
        net: NetSettings | None = None,
        probe: Probe | None = None,
        clock: Clock = SYSTEM_CLOCK,
        owner: str = "",
    ) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def deliver(
        self, send: Send, *, key: str | None = None, records: int = 0, size: int = 0
    ) -> Node:
        """Deliver one flush; returns the node that confirmed it."""
        raise NotImplementedError

    def reload(self, spec: UpstreamSpec) -> None:
        """Take a new node list: new nodes join, removed nodes drain."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError
