"""Resolution: caching, literal addresses, and failover between a node's addresses."""

from __future__ import annotations

import asyncio

import pytest

from relaybit.errors import DeliveryError, NoHealthyNode
from relaybit.testing import (
    FakeClock,
    LineServer,
    StaticResolver,
    closed_port,
    line_connector,
    line_sender,
    make_node,
    make_spec,
)
from relaybit.upstream.dns import DNSCache, connect_any, is_ip_literal, system_resolver
from relaybit.upstream.health import NodeState
from relaybit.upstream.node import NetSettings, Node
from relaybit.upstream.upstream import Connection, Upstream


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "10.1.2.3"])
def test_ip_literals(host: str) -> None:
    assert is_ip_literal(host)


@pytest.mark.parametrize("host", ["localhost", "node.example", "1.2.3"])
def test_names_are_not_literals(host: str) -> None:
    assert not is_ip_literal(host)


async def test_literal_needs_no_lookup() -> None:
    resolver = StaticResolver({})
    cache = DNSCache(resolver)
    assert await cache.resolve("::1", 80) == [("::1", 80)]
    assert await cache.resolve("[::1]", 80) == [("::1", 80)]
    assert resolver.lookups == {}


async def test_answers_are_cached_for_the_ttl() -> None:
    clock = FakeClock()
    resolver = StaticResolver({"node.example": ["10.0.0.1", "10.0.0.2", "10.0.0.1"]})
    cache = DNSCache(resolver, ttl=30.0, clock=clock)
    answer = await cache.resolve("node.example", 24224)
    assert answer == [("10.0.0.1", 24224), ("10.0.0.2", 24224)]
    clock.advance(29.0)
    await cache.resolve("node.example", 24224)
    assert resolver.lookups == {"node.example": 1}
    clock.advance(1.0)
    await cache.resolve("node.example", 24224)
    assert resolver.lookups == {"node.example": 2}
    cache.forget("node.example", 24224)
    await cache.resolve("node.example", 24224)
    assert resolver.lookups == {"node.example": 3}


async def test_unknown_name_is_a_dns_delivery_error() -> None:
    cache = DNSCache(StaticResolver({}))
    with pytest.raises(DeliveryError) as info:
        await cache.resolve("nowhere.example", 1)
    assert info.value.kind == "dns"
    assert "nowhere.example" in info.value.message


async def test_system_resolver_resolves_localhost() -> None:
    answer = await system_resolver("localhost", 5170)
    assert answer
    assert {port for _, port in answer} == {5170}
    assert {addr for addr, _ in answer} <= {"127.0.0.1", "::1"}


async def test_connect_any_tries_every_address_and_names_them() -> None:
    node = make_node("n", 1, host="node.example")
    tried: list[tuple[str, int]] = []

    async def refuse(node: Node, host: str, port: int) -> Connection:
        tried.append((host, port))
        raise ConnectionRefusedError(111, "Connect call failed")

    with pytest.raises(DeliveryError) as info:
        await connect_any(node, [("10.0.0.1", 1), ("::1", 2)], refuse, timeout=1.0)
    assert tried == [("10.0.0.1", 1), ("::1", 2)]
    assert info.value.kind == "connect"
    assert info.value.message == (
        "all 2 addresses failed: 10.0.0.1:1: connection refused; [::1]:2: connection refused"
    )


async def test_connect_timeout_applies_per_address() -> None:
    node = make_node("n", 1)
    never = asyncio.Event()

    async def hang(node: Node, host: str, port: int) -> Connection:
        await never.wait()
        raise AssertionError("unreachable")

    with pytest.raises(DeliveryError) as info:
        await connect_any(node, [("127.0.0.1", 1)], hang, timeout=0.05)
    assert info.value.kind == "timeout"
    assert info.value.message == "connect timed out after 0.05s"


async def test_node_fails_over_between_its_addresses() -> None:
    clock = FakeClock()
    async with LineServer() as server:
        dead = closed_port()
        resolver = StaticResolver(
            {"node.example": [("127.0.0.1", dead), ("127.0.0.1", server.port)]}
        )
        spec = make_spec(make_node("node-1", 24224, host="node.example"))
        up = Upstream(spec, line_connector, clock=clock, resolver=resolver)
        try:
            for _ in range(2):
                assert (await up.deliver(line_sender())).name == "node-1"
            assert len(server.lines) == 2
            assert up.node_state("node-1") is NodeState.HEALTHY
            assert up.status()["nodes"][0]["counters"]["failures"] == {}
            assert resolver.lookups == {"node.example": 1}, "keepalive: one connection"
        finally:
            await up.stop()


async def test_node_fails_when_every_address_fails_and_is_resolved_again() -> None:
    clock = FakeClock()
    resolver = StaticResolver(
        {"node.example": [("127.0.0.1", closed_port()), ("127.0.0.1", closed_port())]}
    )
    spec = make_spec(make_node("node-1", 24224, host="node.example"))
    up = Upstream(spec, line_connector, clock=clock, resolver=resolver, net=NetSettings())
    try:
        with pytest.raises(NoHealthyNode) as info:
            await up.deliver(line_sender())
        assert "all 2 addresses failed" in str(info.value)
        with pytest.raises(NoHealthyNode):
            await up.deliver(line_sender())  # panic: tried again, resolved again
        assert resolver.lookups == {"node.example": 2}
    finally:
        await up.stop()


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        (None, ["::1", "10.0.0.1", "fe80::2", "10.0.0.2"]),
        ("ipv4", ["10.0.0.1", "10.0.0.2", "::1", "fe80::2"]),
        ("ipv6", ["::1", "fe80::2", "10.0.0.1", "10.0.0.2"]),
    ],
)
async def test_prefer_a_family_keeps_every_address(prefer: str | None, expected: list[str]) -> None:
    """net.dns.prefer_ipv4 / prefer_ipv6: that family first, the resolver's order kept."""
    resolver = StaticResolver({"n.example": ["::1", "10.0.0.1", "fe80::2", "10.0.0.2"]})
    cache = DNSCache(resolver, prefer=prefer)
    assert [a for a, _ in await cache.resolve("n.example", 24224)] == expected


def test_prefer_comes_from_the_net_keys() -> None:
    from relaybit.config.origin import Origin
    from relaybit.config.schema import RawProperty
    from relaybit.upstream.node import NET_OPTIONS, NetSettings

    opts = NET_OPTIONS.resolve(
        [RawProperty("net.dns.prefer_ipv4", "on", Origin("t.conf", 1))], section="[OUTPUT]"
    )
    assert NetSettings.from_options(opts).dns_prefer == "ipv4"
