"""Public helpers for tests, relaybit's own and its users'.

- :class:`FakeClock`: a :class:`relaybit.clock.Clock` that moves only when told.
- :func:`make_node` / :func:`make_spec`: build Upstream models without a file.
- :class:`relaybit.upstream.dns.StaticResolver` (re-exported): a DNS answer table.
"""

from __future__ import annotations

from relaybit.upstream.dns import StaticResolver
from relaybit.upstream.node import Node, TLSSettings, UpstreamSettings, UpstreamSpec

__all__ = ["FakeClock", "StaticResolver", "make_node", "make_spec"]


class FakeClock:
    """Monotonic and wall time that advance only through :meth:`advance`."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._monotonic += seconds
        self._wall += seconds

    def __repr__(self) -> str:
        return f"<FakeClock monotonic={self._monotonic:g} time={self._wall:g}>"


def make_node(
    name: str,
    port: int = 24224,
    host: str = "127.0.0.1",
    *,
    weight: int = 1,
    standby: bool = False,
    tls: bool = False,
) -> Node:
    """A :class:`Node` for tests."""
    return Node(
        name=name,
        host=host,
        port=port,
        weight=weight,
        standby=standby,
        tls=TLSSettings(enabled=tls),
    )


def make_spec(
    *nodes: Node, name: str = "test-upstream", settings: UpstreamSettings | None = None
) -> UpstreamSpec:
    """An :class:`UpstreamSpec` for tests."""
    return UpstreamSpec(name=name, nodes=tuple(nodes), settings=settings or UpstreamSettings())
