"""Typed internal events: what the engine and the Upstream tell listeners.

Plain frozen dataclasses, no I/O: the Upstream (sans-IO health code included)
and the engine create them and hand them to callbacks registered with
``add_listener``; the monitoring code, the logs and the demo consume them.
Every field is keyword-only and every field after the identifying ones has a
default, so producers may fill in what they know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every internal event; ``at`` is wall time (seconds since the epoch)."""

    at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStateChanged(Event):
    """A node of an Upstream moved from one health state to another.

    States: ``healthy``, ``ejected``, ``standby``, ``probing``, ``panic``.
    ``until`` is the wall time an ejection ends (when ``new`` is ``ejected``).
    """

    upstream: str
    node: str
    old: str
    new: str
    reason: str = ""
    until: float | None = None
    owner: str = ""  #: the output instance using this upstream (``forward.0``)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkFlushed(Event):
    """One flush of one chunk ended, with the output's result (ok, retry, error)."""

    output: str
    tag: str
    records: int
    size: int
    result: str
    node: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushFailedOver(Event):
    """A flush failed on ``node`` and went on at once to the next candidate."""

    upstream: str
    node: str
    kind: str  #: connect, timeout, tls, handshake, auth, write, ack_timeout, http ...
    error: str = ""
    owner: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(Event):
    """The engine scheduled chunk ``chunk_id`` for another try in ``delay`` seconds."""

    output: str
    chunk_id: str
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryExhausted(Event):
    """A chunk reached its retry limit and was dropped (counted and logged)."""

    output: str
    chunk_id: str
    records: int
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOpened(Event):
    """A pooled connection to a node was opened."""

    upstream: str
    node: str
    address: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """A pooled connection to a node was closed (``reason`` says why)."""

    upstream: str
    node: str
    reason: str = ""


Listener = Callable[[Event], Any]


@dataclass(slots=True)
class EventHub:
    """A tiny fan-out of events to listeners; a failing listener never stops the others."""

    listeners: list[Listener] = field(default_factory=list)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every future event."""
        self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        if listener in self.listeners:
            self.listeners.remove(listener)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every listener."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a monitor must never break the data path
                logging.getLogger("relaybit.monitoring").exception(
                    "event listener %r failed", listener
                )

    def __repr__(self) -> str:
        return f"<EventHub listeners={len(self.listeners)}>"
