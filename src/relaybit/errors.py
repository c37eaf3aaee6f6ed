"""The exception tree of relaybit.

Configuration problems raise :class:`ConfigError` (always with an origin when the
value came from a file).  Wire problems raise :class:`LocalProtocolError` (we
tried something illegal) or :class:`RemoteProtocolError` (the peer did).  Delivery
problems raise :class:`DeliveryError` subclasses, which say whether another node
may take the same flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaybit.config.origin import Origin


class RelaybitError(Exception):
    """Base of every error relaybit raises on purpose."""


class ConfigError(RelaybitError):
    """A configuration problem, located at ``path:line`` where known.

    Rendered as ``path:line: [SECTION] name: key: message``.
    """

    def __init__(
        self,
        message: str,
        origin: Origin | None = None,
        *,
        section: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.origin = origin
        self.section = section
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        parts: list[str] = []
        if self.origin is not None:
            parts.append(f"{self.origin}:")
        if self.section:
            parts.append(f"{self.section}")
        if self.key:
            parts.append(f"'{self.key}':")
        parts.append(self.message)
        return " ".join(parts)


class ConfigErrors(ConfigError):
    """Several configuration errors, collected so the user sees them all at once."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            first.message if first else "invalid configuration",
            first.origin if first else None,
            section=first.section if first else None,
            key=first.key if first else None,
        )

    def __str__(self) -> str:
        return "\n".join(ConfigError.__str__(e) for e in self.errors)


class ProtocolError(RelaybitError):
    """A violation of a wire protocol."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a bug or a misuse)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class FrameTooLarge(RemoteProtocolError):
    """The peer sent or declared a frame larger than the receiver accepts."""


class UpstreamError(RelaybitError):
    """A problem of the Upstream as a whole."""


class NoHealthyNode(UpstreamError):
    """Every node failed or is ejected for this flush."""


class DeliveryError(RelaybitError):
    """One attempt to deliver a flush to one node failed.

    ``kind`` is a short, stable label used in metrics and logs
    (``connect``, ``timeout``, ``tls``, ``handshake``, ``auth``, ``write``,
    ``ack_timeout``, ``ack_mismatch``, ``http_5xx``, ``http_429``, ``http_4xx``,
    ``protocol``).  ``failover`` says whether the same flush may go to another
    node; a permanent error (a 400 from an HTTP server) must not.
    """

    failover: bool = True

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")


class PermanentDeliveryError(DeliveryError):
    """The receiver rejected the data for good; retrying elsewhere cannot help."""

    failover = False
