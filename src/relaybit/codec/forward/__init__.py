"""Sans-IO Forward protocol (Fluentd / Fluent Bit): events, connection, handshake digests."""

from relaybit.codec.forward.connection import ForwardConnection, entry
from relaybit.codec.forward.events import (
    NEED_DATA,
    Ack,
    CompressedPackedForward,
    ConnectionClosed,
    DataEvent,
    Event,
    Forward,
    Heartbeat,
    Helo,
    Message,
    PackedForward,
    Ping,
    Pong,
)
from relaybit.codec.forward.state import Role, State

__all__ = [
    "NEED_DATA",
    "Ack",
    "CompressedPackedForward",
    "ConnectionClosed",
    "DataEvent",
    "Event",
    "Forward",
    "ForwardConnection",
    "Heartbeat",
    "Helo",
    "Message",
    "PackedForward",
    "Ping",
    "Pong",
    "Role",
    "State",
    "entry",
]
