"""Send an application's events to a Forward node or a tier of nodes, with failover.

- :class:`Sender`: thread-safe ``emit(tag, record, time=None) -> bool``; a
  background thread delivers.
- :class:`AsyncSender`: ``await emit(...)``; delivery runs in the caller's loop.
- :class:`SenderStats`: what ``stats()`` and ``close()`` return.

Both buffer records as msgpack entries per tag (bounded: ``buffer_limit``),
flush PackedForward chunks through an :class:`~relaybit.upstream.upstream.Upstream`
of :class:`~relaybit.net.forward_client.ForwardClient` connections (acks on by
default), retry with backoff while the buffer has room, and count every record
they drop.  The API follows fluent-logger's ``FluentSender`` (see the README).
"""

from __future__ import annotations

from relaybit.sender.aio import AsyncSender
from relaybit.sender.base import SenderStats
from relaybit.sender.threaded import Sender

__all__ = ["AsyncSender", "Sender", "SenderStats"]
