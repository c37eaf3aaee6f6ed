"""Balancing: the order in which the nodes of one group are tried for one flush.

Pure code.  A balancer is asked once per flush: ``order(nodes, eligible, key=,
in_flight=)`` gets the group's nodes in file order and the names of those that may
take a flush now, and returns the eligible nodes in the order to try them (the
first one takes the flush; the others are the failover order).  The Upstream
keeps one balancer for its active nodes and one for its standby nodes, and in
panic passes every node as eligible.

Balancers (``balance`` key):

- ``round_robin`` (default), identical to Fluent Bit.  ``flb_upstream_ha_node_get()``
  in ``src/flb_upstream_ha.c`` returns the first node of the list on the first
  call and then, on every call, the node after ``last_used_node``, wrapping at
  the end of the list (nodes are appended in file order): with nodes 1 2 3 the
  flushes go to 1 2 3 1 2 3 ...  relaybit picks the same sequence; when the next
  node in turn cannot take a flush it moves on to the following eligible one (and
  remembers that one as last used), and the failover order continues in file
  order from the chosen node.
- ``weighted``: nginx's smooth weighted round robin on ``Node.weight`` (weights
  5 1 1 give a a b a c a a, never long bursts); failover continues in file order.
- ``least_pending``: the fewest flushes in flight first, ties broken at random.
- ``hash``: consistent hashing of ``key`` on a ring with ``VNODES_PER_WEIGHT``
  points per weight unit (BLAKE2b, stable across processes); the same key goes
  to the same node while it is eligible, and taking a node away moves only that
  node's keys.  Without a key it falls back to round robin.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from relaybit.upstream.node import BALANCE_CHOICES, Node

VNODES_PER_WEIGHT = 160


class Balancer(Protocol):
    """Orders the eligible nodes of one group for one flush."""

    def order(
        self,
        nodes: Sequence[Node],
        eligible: Collection[str],
        *,
        key: str | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[Node]: ...


def _rotate_from(nodes: Sequence[Node], start: int, eligible: Collection[str]) -> list[Node]:
    n = len(nodes)
    return [nodes[(start + i) % n] for i in range(n) if nodes[(start + i) % n].name in eligible]


class RoundRobin:
    """Fluent Bit's round robin, skipping nodes that cannot take a flush."""

    def __init__(self) -> None:
        self.last_used: str | None = None

    def order(
        self,
        nodes: Sequence[Node],
        eligible: Collection[str],
        *,
        key: str | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[Node]:
        if not nodes:
            return []
        names = [n.name for n in nodes]
        start = names.index(self.last_used) + 1 if self.last_used in names else 0
        ordered = _rotate_from(nodes, start, eligible)
        if ordered:
            self.last_used = ordered[0].name
        return ordered

    def __repr__(self) -> str:
        return f"<RoundRobin last_used={self.last_used}>"


class SmoothWeighted:
    """nginx's smooth weighted round robin over ``Node.weight``."""

    def __init__(self) -> None:
        self.current: dict[str, int] = {}

    def order(
        self,
        nodes: Sequence[Node],
        eligible: Collection[str],
        *,
        key: str | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[Node]:
        candidates = [n for n in nodes if n.name in eligible]
        if not candidates:
            return []
        total = 0
        best: Node | None = None
        for node in candidates:
            cur = self.current.get(node.name, 0) + node.weight
            self.current[node.name] = cur
            total += node.weight
            if best is None or cur > self.current[best.name]:
                best = node
        assert best is not None
        self.current[best.name] -= total
        known = {n.name for n in nodes}
        for name in [k for k in self.current if k not in known]:
            del self.current[name]
        return _rotate_from(nodes, list(nodes).index(best), eligible)

    def __repr__(self) -> str:
        return f"<SmoothWeighted current={self.current}>"


class LeastPending:
    """Fewest flushes in flight first; ties broken by the injected random source."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def order(
        self,
        nodes: Sequence[Node],
        eligible: Collection[str],
        *,
        key: str | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[Node]:
        pending = in_flight or {}
        keyed = [
            (pending.get(n.name, 0), self.rng.random(), n) for n in nodes if n.name in eligible
        ]
        keyed.sort(key=lambda t: (t[0], t[1]))
        return [n for _, _, n in keyed]

    def __repr__(self) -> str:
        return "<LeastPending>"


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash()``).

    Keys decoded from invalid UTF-8 (surrogateescape) hash as their original bytes.
    """
    data = text.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class ConsistentHash:
    """A hash ring with ``VNODES_PER_WEIGHT`` x weight points per node."""

    def __init__(self, vnodes_per_weight: int = VNODES_PER_WEIGHT) -> None:
        self.vnodes_per_weight = vnodes_per_weight
        self._fallback = RoundRobin()
        self._ring_of: tuple[tuple[str, int], ...] = ()
        self._points: list[int] = []
        self._owners: list[str] = []

    def _ring(self, nodes: Sequence[Node]) -> None:
        ident = tuple((n.name, n.weight) for n in nodes)
        if ident == self._ring_of:
            return
        ring = sorted(
            (stable_hash(f"{name}#{i}"), name)
            for name, weight in ident
            for i in range(weight * self.vnodes_per_weight)
        )
        self._points = [p for p, _ in ring]
        self._owners = [o for _, o in ring]
        self._ring_of = ident

    def order(
        self,
        nodes: Sequence[Node],
        eligible: Collection[str],
        *,
        key: str | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[Node]:
        if key is None:
            return self._fallback.order(nodes, eligible)
        if not nodes:
            return []
        self._ring(nodes)
        by_name = {n.name: n for n in nodes}
        wanted = sum(1 for n in nodes if n.name in eligible)
        seen: dict[str, None] = {}
        start = bisect.bisect_left(self._points, stable_hash(key))
        size = len(self._points)
        for i in range(size):
            owner = self._owners[(start + i) % size]
            if owner in eligible and owner not in seen:
                seen[owner] = None
                if len(seen) == wanted:
                    break
        return [by_name[name] for name in seen]

    def __repr__(self) -> str:
        return f"<ConsistentHash points={len(self._points)}>"


def make_balancer(kind: str, *, rng: random.Random | None = None) -> Balancer:
    """A new balancer for a ``balance`` value (one of ``BALANCE_CHOICES``)."""
    if kind == "round_robin":
        return RoundRobin()
    if kind == "weighted":
        return SmoothWeighted()
    if kind == "least_pending":
        return LeastPending(rng)
    if kind == "hash":
        return ConsistentHash()
    raise ValueError(f"unknown balance {kind!r}: expected one of {', '.join(BALANCE_CHOICES)}")
