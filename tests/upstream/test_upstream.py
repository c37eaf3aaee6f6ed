"""The Upstream facade over real sockets on 127.0.0.1 (tiny line servers)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import DeliveryError, NoHealthyNode, PermanentDeliveryError
from relaybit.testing import (
    FakeClock,
    LineServer,
    closed_port,
    line_connector,
    line_sender,
    make_node,
    make_spec,
)
from relaybit.testing import wait_for as eventually
from relaybit.upstream.health import NodeState
from relaybit.upstream.node import NetSettings, Node, UpstreamSettings
from relaybit.upstream.upstream import (
    AllNodesFailed,
    Connection,
    NodeStateChanged,
    PanicChanged,
    Upstream,
)

SEND = line_sender(timeout=2.0)


@pytest.fixture
async def servers() -> AsyncIterator[list[LineServer]]:
    started = [await LineServer().start() for _ in range(3)]
    yield started
    for server in started:
        await server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def nodes_for(*ports: int, **kw: object) -> list[Node]:
    return [make_node(f"node-{i + 1}", port) for i, port in enumerate(ports)]


def upstream(
    nodes: list[Node], clock: FakeClock, *, net: NetSettings | None = None, **settings: object
) -> Upstream:
    spec = make_spec(*nodes, name="forward-balancing", settings=UpstreamSettings(**settings))  # type: ignore[arg-type]
    return Upstream(spec, line_connector, net=net, clock=clock, owner="forward.0")


async def test_round_robin_over_real_nodes(servers: list[LineServer], clock: FakeClock) -> None:
    up = upstream(nodes_for(*(s.port for s in servers)), clock)
    try:
        chosen = [(await up.deliver(SEND, records=1, size=7)).name for _ in range(6)]
        assert chosen == ["node-1", "node-2", "node-3"] * 2
        assert [len(s.lines) for s in servers] == [2, 2, 2]
        counters = up.status()["nodes"][0]["counters"]
        assert (counters["flushes"], counters["records"], counters["bytes"]) == (2, 2, 14)
        assert counters["latency"]["count"] == 2
    finally:
        await up.stop()


async def test_refused_node_fails_over_within_the_same_deliver(
    servers: list[LineServer], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    dead = closed_port()
    up = upstream(nodes_for(dead, servers[1].port, servers[2].port), clock)
    events: list[object] = []
    up.add_listener(events.append)
    caplog.set_level(logging.INFO, logger="relaybit.upstream")
    try:
        node = await up.deliver(SEND, records=3)
        assert node.name == "node-2"
        assert len(servers[1].lines) == 1
        assert up.node_state("node-1") is NodeState.EJECTED
        status = up.status()
        first = status["nodes"][0]
        assert first["state"] == "ejected"
        assert first["ejected_until"] == pytest.approx(clock.time() + 10.0)
        assert first["counters"]["failures"] == {"connect": 1}
        assert first["counters"]["failovers"] == 1
        assert first["counters"]["ejections"] == 1
        assert first["last_error"]["kind"] == "connect"
        assert "refused" in first["last_error"]["message"]
        assert status["failovers"] == 1
        lines = [r.getMessage() for r in caplog.records if r.name == "relaybit.upstream"]
        assert lines == [
            f"[forward.0] upstream forward-balancing: node node-1 (127.0.0.1:{dead}) "
            "ejected for 10s after 1 failure: connect: connection refused"
        ]
        (event,) = events
        assert isinstance(event, NodeStateChanged)
        assert (event.node, event.old, event.new) == ("node-1", "healthy", "ejected")
        # more flushes: the ejected node is skipped, no new log line, no new failure
        for _ in range(4):
            assert (await up.deliver(SEND)).name in {"node-2", "node-3"}
        assert up.status()["nodes"][0]["counters"]["failures"] == {"connect": 1}
        assert len([r for r in caplog.records if r.name == "relaybit.upstream"]) == 1
    finally:
        await up.stop()


async def test_hung_node_fails_over_on_ack_timeout(clock: FakeClock) -> None:
    async with LineServer(hang=True) as hung, LineServer() as good:
        up = upstream(nodes_for(hung.port, good.port), clock)
        try:
            node = await up.deliver(line_sender(timeout=0.2))
            assert node.name == "node-2"
            assert hung.lines == [b"record\n"], "the hung node got the data but never confirmed"
            status = up.status()["nodes"][0]
            assert status["state"] == "ejected"
            assert status["counters"]["failures"] == {"ack_timeout": 1}
            assert status["pool"]["active"] == 0
        finally:
            await up.stop()


async def test_all_down_raises_no_healthy_node_listing_each_error(clock: FakeClock) -> None:
    a, b = closed_port(), closed_port()
    up = upstream(nodes_for(a, b), clock)
    try:
        with pytest.raises(NoHealthyNode) as info:
            await up.deliver(SEND)
        assert isinstance(info.value, AllNodesFailed)
        message = str(info.value)
        assert "2 of 2 nodes failed" in message
        assert f"node-1 (127.0.0.1:{a}): connect:" in message
        assert f"node-2 (127.0.0.1:{b}): connect:" in message
        assert [e.node for e in info.value.errors] == ["node-1", "node-2"]
        assert up.status()["panic"] is True
    finally:
        await up.stop()


async def test_a_node_named_after_its_address_is_not_named_twice(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # an output's own host/port is a one-node upstream whose node is "host:port"
    port = closed_port()
    address = f"127.0.0.1:{port}"
    up = upstream([make_node(address, port)], clock)
    caplog.set_level(logging.INFO, logger="relaybit.upstream")
    try:
        with pytest.raises(NoHealthyNode) as info:
            await up.deliver(SEND)
    finally:
        await up.stop()
    assert f"1 of 1 nodes failed: {address}: connect:" in str(info.value)
    ejected = [r.getMessage() for r in caplog.records if "ejected" in r.getMessage()]
    assert len(ejected) == 1 and f"node {address} ejected for" in ejected[0]
    assert f"({address})" not in ejected[0] + str(info.value)


async def test_panic_tries_every_node_when_all_are_ejected(clock: FakeClock) -> None:
    port_a, port_b = closed_port(), closed_port()
    up = upstream(nodes_for(port_a, port_b), clock)
    events: list[object] = []
    up.add_listener(events.append)
    try:
        with pytest.raises(AllNodesFailed):
            await up.deliver(SEND)
        assert up.panic
        async with LineServer(port=port_b) as back:
            node = await up.deliver(SEND)  # both still ejected: panic tries them all
            assert node.name == "node-2"
            assert back.lines == [b"record\n"]
        assert up.node_state("node-2") is NodeState.HEALTHY
        assert not up.panic
        panics = [e.panic for e in events if isinstance(e, PanicChanged)]
        assert panics == [True, False]
    finally:
        await up.stop()


async def test_ejected_node_comes_back_after_probing(servers: list[LineServer]) -> None:
    clock = FakeClock()
    port = closed_port()
    up = upstream(nodes_for(port, servers[0].port), clock)
    events: list[NodeStateChanged] = []
    up.add_listener(lambda e: events.append(e) if isinstance(e, NodeStateChanged) else None)
    try:
        assert (await up.deliver(SEND)).name == "node-2"
        async with LineServer(port=port) as revived:
            for _ in range(3):
                assert (await up.deliver(SEND)).name == "node-2"
            assert revived.lines == [], "an ejected node takes no traffic"
            clock.advance(10.0)
            assert up.node_state("node-1") is NodeState.PROBING
            chosen = {(await up.deliver(SEND)).name for _ in range(2)}
            assert "node-1" in chosen
            assert up.node_state("node-1") is NodeState.HEALTHY
            assert len(revived.lines) == 1
        assert [(e.old, e.new) for e in events] == [
            ("healthy", "ejected"),
            ("ejected", "probing"),
            ("probing", "healthy"),
        ]
    finally:
        await up.stop()


async def test_keepalive_reuses_one_connection(clock: FakeClock) -> None:
    async with LineServer() as server:
        up = upstream(nodes_for(server.port), clock)
        try:
            for _ in range(5):
                await up.deliver(SEND)
            assert server.accepted == 1
            assert repr(up.pool("node-1")) == "<NodePool node-1 [active 0, idle 1]>"
        finally:
            await up.stop()
        await eventually(lambda: server.open_connections == 0)


async def test_keepalive_off_opens_a_connection_per_flush(clock: FakeClock) -> None:
    async with LineServer() as server:
        up = upstream(nodes_for(server.port), clock, net=NetSettings(keepalive=False))
        try:
            for _ in range(3):
                await up.deliver(SEND)
            assert server.accepted == 3
            assert up.pool("node-1").idle == 0
        finally:
            await up.stop()


async def test_max_recycle_closes_after_n_uses(clock: FakeClock) -> None:
    async with LineServer() as server:
        up = upstream(nodes_for(server.port), clock, net=NetSettings(keepalive_max_recycle=2))
        try:
            for _ in range(5):
                await up.deliver(SEND)
            assert server.accepted == 3
            await eventually(lambda: server.open_connections == 1)
        finally:
            await up.stop()


async def test_idle_timeout_closes_idle_connections(clock: FakeClock) -> None:
    async with LineServer() as server:
        net = NetSettings(keepalive_idle_timeout=30.0)
        up = upstream(nodes_for(server.port), clock, net=net)
        try:
            await up.deliver(SEND)
            clock.advance(31.0)
            await up.deliver(SEND)
            assert server.accepted == 2
            await eventually(lambda: server.open_connections == 1)
        finally:
            await up.stop()


def gated_send(
    gate: asyncio.Event, started: list[str]
) -> Callable[[Node, Connection], Awaitable[None]]:
    inner = line_sender()

    async def send(node: Node, connection: Connection) -> None:
        started.append(node.name)
        await gate.wait()
        await inner(node, connection)

    return send


async def test_max_worker_connections_queues_flushes(clock: FakeClock) -> None:
    async with LineServer() as server:
        up = upstream(nodes_for(server.port), clock, net=NetSettings(max_worker_connections=1))
        gate = asyncio.Event()
        started: list[str] = []
        try:
            first = asyncio.create_task(up.deliver(gated_send(gate, started)))
            second = asyncio.create_task(up.deliver(gated_send(gate, started)))
            await eventually(lambda: started == ["node-1"] and up.pool("node-1").waiting == 1)
            assert repr(up.pool("node-1")) == "<NodePool node-1 [active 1, idle 0, waiting 1]>"
            assert up.in_flight("node-1") == 2
            gate.set()
            assert (await first).name == (await second).name == "node-1"
            assert server.accepted == 1
            assert up.in_flight("node-1") == 0
        finally:
            await up.stop()


async def test_standby_takes_traffic_only_when_actives_are_gone(clock: FakeClock) -> None:
    async with LineServer() as a, LineServer() as b, LineServer() as s:
        nodes = [
            make_node("a", a.port),
            make_node("b", b.port),
            make_node("s", s.port, standby=True),
        ]
        up = upstream(nodes, clock)
        try:
            for _ in range(10):
                await up.deliver(SEND)
            assert (len(a.lines), len(b.lines), len(s.lines)) == (5, 5, 0)
            await a.stop()
            await b.stop()
            assert (await up.deliver(SEND)).name == "s"
            for _ in range(3):
                assert (await up.deliver(SEND)).name == "s"
            assert up.status()["panic"] is False
            assert up.status()["nodes"][2]["standby"] is True
        finally:
            await up.stop()


async def test_max_failover_limits_nodes_tried(servers: list[LineServer], clock: FakeClock) -> None:
    up = upstream(nodes_for(closed_port(), servers[0].port), clock, max_failover=1)
    try:
        with pytest.raises(AllNodesFailed) as info:
            await up.deliver(SEND)
        assert len(info.value.errors) == 1
        assert servers[0].lines == []
    finally:
        await up.stop()


async def test_permanent_error_is_raised_without_failover(
    servers: list[LineServer], clock: FakeClock
) -> None:
    up = upstream(nodes_for(servers[0].port, servers[1].port), clock)

    async def rejecting(node: Node, connection: Connection) -> None:
        raise PermanentDeliveryError("http_4xx", "400 bad request")

    try:
        with pytest.raises(PermanentDeliveryError):
            await up.deliver(rejecting)
        assert servers[1].lines == []
        assert up.node_state("node-1") is NodeState.HEALTHY
        assert up.status()["nodes"][0]["counters"]["failures"] == {"http_4xx": 1}
    finally:
        await up.stop()


async def test_delivery_error_from_send_fails_over(
    servers: list[LineServer], clock: FakeClock
) -> None:
    up = upstream(nodes_for(servers[0].port, servers[1].port), clock)

    async def flaky(node: Node, connection: Connection) -> None:
        if node.name == "node-1":
            raise DeliveryError("http_5xx", "503 service unavailable")
        await SEND(node, connection)

    try:
        assert (await up.deliver(flaky)).name == "node-2"
        assert up.status()["nodes"][0]["counters"]["failures"] == {"http_5xx": 1}
        assert up.pool("node-1").idle == 0, "the failed connection was closed, not pooled"
    finally:
        await up.stop()


async def test_hash_sends_a_key_to_one_node(servers: list[LineServer], clock: FakeClock) -> None:
    up = upstream(nodes_for(*(s.port for s in servers)), clock, balance="hash")
    try:
        chosen = {(await up.deliver(SEND, key="trace-7")).name for _ in range(6)}
        assert len(chosen) == 1
    finally:
        await up.stop()


async def test_least_pending_avoids_a_busy_node(
    servers: list[LineServer], clock: FakeClock
) -> None:
    up = upstream(nodes_for(servers[0].port, servers[1].port), clock, balance="least_pending")
    gate = asyncio.Event()
    started: list[str] = []
    try:
        busy = asyncio.create_task(up.deliver(gated_send(gate, started)))
        await eventually(lambda: len(started) == 1)
        other = {"node-1": "node-2", "node-2": "node-1"}[started[0]]
        for _ in range(3):
            assert (await up.deliver(SEND)).name == other
        gate.set()
        await busy
    finally:
        await up.stop()


async def test_reload_adds_and_removes_nodes_without_losing_in_flight(
    servers: list[LineServer], clock: FakeClock
) -> None:
    n1, n2, n3 = nodes_for(*(s.port for s in servers))
    up = upstream([n1, n2], clock)
    gate = asyncio.Event()
    started: list[str] = []
    try:
        assert (await up.deliver(SEND)).name == "node-1"
        pending = asyncio.create_task(up.deliver(gated_send(gate, started)))
        await eventually(lambda: started == ["node-2"])
        pool2 = up.pool("node-2")
        up.reload(make_spec(n1, n3, name="forward-balancing"))
        names = [n["name"] for n in up.status()["nodes"]]
        assert names == ["node-1", "node-3", "node-2"]
        assert up.status()["nodes"][2]["state"] == "draining"
        gate.set()
        assert (await pending).name == "node-2"
        assert len(servers[1].lines) == 1
        await eventually(lambda: pool2.closed)
        assert [n["name"] for n in up.status()["nodes"]] == ["node-1", "node-3"]
        chosen = [(await up.deliver(SEND)).name for _ in range(4)]
        assert set(chosen) == {"node-1", "node-3"}
        assert servers[0].accepted == 1, "an unchanged node keeps its connection"
    finally:
        await up.stop()


async def test_reload_keeps_health_of_unchanged_nodes(
    servers: list[LineServer], clock: FakeClock
) -> None:
    dead = closed_port()
    n1, n2 = nodes_for(dead, servers[0].port)
    up = upstream([n1, n2], clock)
    try:
        await up.deliver(SEND)
        up.reload(make_spec(n1, n2, name="forward-balancing"))
        assert up.node_state("node-1") is NodeState.EJECTED
    finally:
        await up.stop()


async def test_status_is_json_and_repr_is_one_line(
    servers: list[LineServer], clock: FakeClock
) -> None:
    secret = "s3cret-shared-key"
    prop = RawProperty("shared_key", secret, Origin("upstream.conf", 7))
    node = Node(
        name="node-1",
        host="127.0.0.1",
        port=servers[0].port,
        extra={"shared_key": prop},
        properties={"shared_key": prop},
    )
    up = upstream([node], clock)
    try:
        await up.deliver(SEND, records=2, size=10)
        status = up.status()
        text = json.dumps(status)
        assert secret not in text
        assert set(status) >= {"name", "balance", "panic", "nodes"}
        (entry,) = status["nodes"]
        assert set(entry) >= {
            "name", "address", "state", "ejected_until", "standby", "in_flight", "counters",
        }  # fmt: skip
        assert entry["address"] == f"127.0.0.1:{servers[0].port}"
        assert entry["counters"]["latency"]["buckets"]["+Inf"] == 1
        assert repr(up) == "<Upstream forward-balancing round_robin [node-1 healthy]>"
        assert secret not in repr(up) + repr(up.pool("node-1")) + repr(node)
    finally:
        await up.stop()


async def test_duplicate_node_names_are_rejected(clock: FakeClock) -> None:
    from relaybit.errors import UpstreamError

    with pytest.raises(UpstreamError, match="used twice"):
        upstream([make_node("a", 1), make_node("a", 2)], clock)


async def test_listener_errors_do_not_break_delivery(
    servers: list[LineServer], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    up = upstream(nodes_for(closed_port(), servers[0].port), clock)

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    up.add_listener(broken)
    try:
        assert (await up.deliver(SEND)).name == "node-2"
        assert any("listener failed" in r.getMessage() for r in caplog.records)
        up.remove_listener(broken)
    finally:
        await up.stop()


class StaleLooking:
    """Wraps a connection and claims to be usable even after the peer dropped it."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    def is_usable(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_stale_keepalive_connection_is_replaced_not_blamed(clock: FakeClock) -> None:
    async def connector(node: Node, host: str, port: int) -> Connection:
        return StaleLooking(await line_connector(node, host, port))

    async def send(node: Node, connection: Connection) -> None:
        assert isinstance(connection, StaleLooking)
        await SEND(node, connection.inner)

    async with LineServer() as server:
        spec = make_spec(make_node("node-1", server.port), name="forward-balancing")
        up = Upstream(spec, connector, clock=clock)
        try:
            await up.deliver(send)
            await server.drop_connections()
            assert (await up.deliver(send)).name == "node-1"
            status = up.status()["nodes"][0]
            assert status["state"] == "healthy"
            assert status["counters"]["failures"] == {}
            assert status["counters"]["stale_connections"] == 1
            assert server.accepted == 2
        finally:
            await up.stop()


async def test_hash_serialises_flushes_of_one_key_and_not_of_others(
    servers: list[LineServer],
) -> None:
    spec = make_spec(
        make_node("node-1", servers[0].port), settings=UpstreamSettings(balance="hash")
    )
    upstream = Upstream(spec, line_connector)
    log: list[str] = []
    gate = asyncio.Event()

    def sender(label: str, *, hold: bool = False) -> Callable[[Node, Connection], Awaitable[None]]:
        async def send(node: Node, connection: Connection) -> None:
            log.append(f"start {label}")
            if hold:
                await gate.wait()
            log.append(f"end {label}")

        return send

    first = asyncio.create_task(upstream.deliver(sender("a1", hold=True), key="a"))
    await eventually(lambda: log == ["start a1"])
    second = asyncio.create_task(upstream.deliver(sender("a2"), key="a"))
    await upstream.deliver(sender("b1"), key="b")  # another key is not held back
    assert "start a2" not in log
    gate.set()
    await asyncio.gather(first, second)
    await upstream.stop()
    assert log.index("end a1") < log.index("start a2")
    assert log.index("end b1") < log.index("end a1")
    assert upstream._key_locks == {}


async def test_host_the_resolver_cannot_encode_fails_over(servers: list[LineServer]) -> None:
    """getaddrinfo raises UnicodeError (not OSError) for a host with an empty label:
    that must be a 'dns' failure of the node, and the flush goes to the next node."""
    bad = make_node("node-1", servers[0].port, host="logs..example.com")
    good = make_node("node-2", servers[1].port)
    up = Upstream(make_spec(bad, good), line_connector)
    try:
        assert (await up.deliver(SEND)).name == "node-2"
        status = {n["name"]: n for n in up.status()["nodes"]}
        assert status["node-1"]["counters"]["failures"] == {"dns": 1}
        assert "cannot resolve logs..example.com" in status["node-1"]["last_error"]["message"]
    finally:
        await up.stop()


async def test_a_resolver_that_never_answers_is_bounded_by_connect_timeout(
    servers: list[LineServer],
) -> None:
    """Name resolution is part of connecting: it must not hang a flush forever."""
    never = asyncio.Event()

    async def resolver(host: str, port: int) -> list[tuple[str, int]]:
        if host == "stuck.example":
            await never.wait()
        return [("127.0.0.1", port)]

    stuck = make_node("node-1", servers[0].port, host="stuck.example")
    good = make_node("node-2", servers[1].port, host="good.example")
    up = Upstream(
        make_spec(stuck, good),
        line_connector,
        net=NetSettings(connect_timeout=0.2),
        resolver=resolver,
    )
    try:
        assert (await up.deliver(SEND)).name == "node-2"
        failures = {n["name"]: n["counters"]["failures"] for n in up.status()["nodes"]}
        assert failures["node-1"] == {"dns": 1}
    finally:
        await up.stop()


async def test_a_flush_failing_on_a_re_pointed_node_does_not_eject_its_successor(
    servers: list[LineServer], clock: FakeClock
) -> None:
    """Reload points node-1 elsewhere (same name, new port) while a flush is in flight
    on the old endpoint: that flush's failure belongs to the old endpoint, not to
    the new node-1 (it used to eject the new node, which had done nothing wrong)."""
    old = make_node("node-1", servers[0].port)
    new = make_node("node-1", servers[1].port)
    up = upstream([old], clock)
    gate = asyncio.Event()
    started: list[str] = []

    async def fails_later(node: Node, connection: Connection) -> None:
        started.append(node.name)
        await gate.wait()
        raise DeliveryError("write", "connection reset by peer")

    try:
        pending = asyncio.create_task(up.deliver(fails_later))
        await eventually(lambda: started == ["node-1"])
        up.reload(make_spec(new, name="forward-balancing"))
        gate.set()
        with pytest.raises(NoHealthyNode):
            await pending
        assert up.node_state("node-1") is NodeState.HEALTHY
        assert (await up.deliver(SEND)).name == "node-1"
        assert len(servers[1].lines) == 1
    finally:
        await up.stop()
