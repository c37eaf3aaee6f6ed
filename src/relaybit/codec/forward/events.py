"""Forward protocol events: small, frozen, slotted values (h11 style; do not subclass).

Every data event (:class:`Message`, :class:`Forward`, :class:`PackedForward`,
:class:`CompressedPackedForward`) is normalised to the same three things: the
``tag``, ``entries`` (msgpack ``[time, record]`` entries back to back, the form
chunks hold) and ``records`` (how many entries).  ``chunk`` is the ack id the
peer asked for (``None`` when it asked none); it is kept exactly as received
(``str`` or ``bytes``) so the ack echoes it byte for byte.

Handshake fields are raw ``bytes`` (they travel as msgpack ``str`` holding raw
bytes, never decoded as UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "NEED_DATA",
    "Ack",
    "CompressedPackedForward",
    "ConnectionClosed",
    "DataEvent",
    "Event",
    "Forward",
    "Heartbeat",
    "Helo",
    "Message",
    "NeedData",
    "PackedForward",
    "Ping",
    "Pong",
]

AckId = str | bytes


def ack_id_bytes(chunk: AckId) -> bytes:
    """An ack id as bytes, for a byte-exact comparison (str ids are raw UTF-8)."""
    if isinstance(chunk, bytes):
        return chunk
    return chunk.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Message:
    """Message mode ``[tag, time, record, option?]``: one entry."""

    tag: str
    entries: bytes
    records: int = 1
    chunk: AckId | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """Forward mode ``[tag, [[time, record], ...], option?]``."""

    tag: str
    entries: bytes
    records: int
    chunk: AckId | None = None


@dataclass(frozen=True, slots=True)
class PackedForward:
    """PackedForward mode ``[tag, <entries bytes>, option?]``.

    When sent, ``send_size`` adds the ``size`` option (Fluent Bit's ``send_options``).
    """

    tag: str
    entries: bytes
    records: int
    chunk: AckId | None = None
    send_size: bool = False
    #: ``add_option`` pairs appended to the option map (sent: implies the map)
    extra_options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CompressedPackedForward:
    """CompressedPackedForward: ``entries`` are the *decompressed* entries.

    Received: every gzip member or zstd frame was inflated (``compression``
    says which).  Sent: ``entries`` are compressed with ``compression``.
    """

    tag: str
    entries: bytes
    records: int
    chunk: AckId | None = None
    send_size: bool = False
    compression: str = "gzip"
    extra_options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's ``{"ack": chunk}`` answer."""

    chunk: AckId


@dataclass(frozen=True, slots=True)
class Helo:
    """Server -> client: ``["HELO", {"nonce", "auth", "keepalive"}]``."""

    nonce: bytes
    auth: bytes = b""
    keepalive: bool = True


@dataclass(frozen=True, slots=True)
class Ping:
    """Client -> server: the shared-key digest and optional user credentials."""

    hostname: bytes
    shared_key_salt: bytes
    digest: bytes
    username: bytes = b""
    password_digest: bytes = b""

    def __repr__(self) -> str:
        return f"Ping(hostname={self.hostname!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True)
class Pong:
    """Server -> client: the verdict and the server's own digest."""

    auth_ok: bool
    reason: bytes
    hostname: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A msgpack ``nil`` keep-alive (ignored by servers)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection cleanly (between frames)."""


class NeedData:
    """Sentinel: more bytes are needed before the next event."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

DataEvent = Message | Forward | PackedForward | CompressedPackedForward
Event = DataEvent | Ack | Helo | Ping | Pong | Heartbeat | ConnectionClosed
