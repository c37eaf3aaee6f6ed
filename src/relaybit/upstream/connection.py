"""What the Upstream, its pools and its health checker share about connections.

An output gives its :class:`~relaybit.upstream.upstream.Upstream` a
:data:`Connector` (opens a :class:`Connection` to one resolved address of a
node: TCP, TLS, handshake), a :data:`Send` per flush and optionally a
:data:`Probe` for active health checks.  The pool (:mod:`.pool`) owns the
connections; the checker (:mod:`.checker`) probes through them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from relaybit.upstream.node import Node


class Connection(Protocol):
    """A connection opened by a connector, owned by the node's pool."""

    def is_usable(self) -> bool:
        """False once closed or broken; unusable connections are not reused."""
        ...

    async def aclose(self) -> None: ...


#: ``await connector(node, host, port)``: a connection ready for data, or DeliveryError
Connector = Callable[[Node, str, int], Awaitable[Connection]]
#: ``await probe(node, connection)``: an active health check (forward heartbeat, HTTP GET)
Probe = Callable[[Node, Connection], Awaitable[None]]
#: ``await send(node, connection)``: one flush, returning once the receiver confirmed it
Send = Callable[[Node, Connection], Awaitable[None]]
