"""Name resolution for nodes: cached answers, and trying every address in turn.

A host is resolved on each new connection (an answer is cached for
``net.dns.ttl`` seconds); a literal IPv4 or IPv6 address needs no lookup.
:func:`connect_any` tries every address before the node counts as failed.
The resolver is injectable: ``async resolver(host, port) -> [(address, port), ...]``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.errors import DeliveryError, RemoteProtocolError
from relaybit.upstream.node import Node

Address = tuple[str, int]
Resolver = Callable[[str, int], Awaitable[Sequence[Address]]]
T = TypeVar("T")


async def system_resolver(host: str, port: int) -> list[Address]:
    """Resolve with the event loop's ``getaddrinfo`` (IPv4 and IPv6, TCP)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(str(info[4][0]), int(info[4][1])) for info in infos]


def is_ip_literal(host: str) -> bool:
    """True for ``127.0.0.1``, ``::1`` and ``[::1]``."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class StaticResolver:
    """A resolver answering from a table, for tests: ``{"node.example": [(ip, port)]}``.

    A value may also be a list of addresses (the node's port is used).  Unknown
    names fail like a real lookup.  ``lookups`` counts the calls per host.
    """

    def __init__(self, table: Mapping[str, Sequence[Address | str]]) -> None:
        self.table = dict(table)
        self.lookups: dict[str, int] = {}

    async def __call__(self, host: str, port: int) -> list[Address]:
        self.lookups[host] = self.lookups.get(host, 0) + 1
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(a, port) if isinstance(a, str) else a for a in self.table[host]]

    def __repr__(self) -> str:
        return f"<StaticResolver {sorted(self.table)}>"


class DNSCache:
    """Resolves node hosts through ``resolver``, caching answers for ``ttl`` seconds.

    A lookup longer than ``timeout`` seconds (when above 0) is a ``dns`` failure.
    """

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        ttl: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 0.0,
        prefer: str | None = None,
    ) -> None:
        self.resolver: Resolver = resolver or system_resolver
        self.ttl = ttl
        #: seconds a lookup may take (0 = unbounded); the Upstream passes net.connect_timeout
        self.timeout = timeout
        self.clock = clock
        #: "ipv4" or "ipv6": that family's addresses first (net.dns.prefer_ipv4/6)
        self.prefer = prefer
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}

    async def resolve(self, host: str, port: int) -> list[Address]:
        """Every address of ``host`` (deduplicated, resolver order); DeliveryError('dns')."""
        if is_ip_literal(host):
            return [(host.strip("[]"), port)]
        now = self.clock.monotonic()
        cached = self._cache.get((host, port))
        if cached is not None and cached[0] > now:
            return list(cached[1])
        try:
            if self.timeout > 0:
                async with asyncio.timeout(self.timeout):
                    answer = await self.resolver(host, port)
            else:
                answer = await self.resolver(host, port)
        except TimeoutError:
            message = f"cannot resolve {host}: no answer within {self.timeout:g}s"
            raise DeliveryError("dns", message) from None
        except (OSError, UnicodeError) as exc:
            # UnicodeError: getaddrinfo's IDNA encoding of a host with an empty or
            # over-long label ("logs..example.com"), a failure like any other
            raise DeliveryError("dns", f"cannot resolve {host}: {_describe(exc)}") from exc
        addresses = list(dict.fromkeys(answer))
        if self.prefer is not None:  # stable: the resolver's order within a family
            want_v6 = self.prefer == "ipv6"
            addresses.sort(key=lambda a: (":" in a[0]) != want_v6)
        if not addresses:
            raise DeliveryError("dns", f"cannot resolve {host}: no address")
        if self.ttl > 0:
            self._cache[(host, port)] = (now + self.ttl, addresses)
        return list(addresses)

    def forget(self, host: str, port: int) -> None:
        """Drop a cached answer (every address failed: ask again next time)."""
        self._cache.pop((host, port), None)

    def __repr__(self) -> str:
        return f"<DNSCache ttl={self.ttl:g} entries={len(self._cache)}>"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DeliveryError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and (exc.errno or exc.strerror):
        text = os.strerror(exc.errno) if exc.errno else str(exc.strerror)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


def error_kind(exc: BaseException, default: str) -> str:
    """The DeliveryError kind of an exception met while connecting or sending."""
    if isinstance(exc, DeliveryError):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, RemoteProtocolError):
        return "protocol"
    return default


def describe_error(exc: BaseException) -> str:
    """A short, lower-case message for an exception (no secrets: no arguments echoed)."""
    return _describe(exc)


async def connect_any(
    node: Node,
    addresses: Sequence[Address],
    connect: Callable[[Node, str, int], Awaitable[T]],
    *,
    timeout: float | None = None,
) -> T:
    """Connect to the first address that accepts; ``timeout`` applies per address.

    Raises a DeliveryError naming every address tried when all fail.
    """
    errors: list[tuple[Address, BaseException]] = []
    for host, port in addresses:
        try:
            if timeout is not None and timeout > 0:
                async with asyncio.timeout(timeout):
                    return await connect(node, host, port)
            return await connect(node, host, port)
        except TimeoutError:
            message = f"connect timed out after {timeout:g}s" if timeout else "connect timed out"
            errors.append(((host, port), DeliveryError("timeout", message)))
        except (DeliveryError, OSError, RemoteProtocolError) as exc:
            if isinstance(exc, DeliveryError) and not exc.failover:
                raise
            errors.append(((host, port), exc))
    if not errors:
        raise DeliveryError("dns", f"{node.host} has no address")
    last = errors[-1][1]
    kind = error_kind(last, "connect")
    if len(errors) == 1:
        raise DeliveryError(kind, _describe(last)) from last
    detail = "; ".join(f"{_fmt(addr)}: {_describe(exc)}" for addr, exc in errors)
    raise DeliveryError(kind, f"all {len(errors)} addresses failed: {detail}") from last


def _fmt(addr: Address) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
