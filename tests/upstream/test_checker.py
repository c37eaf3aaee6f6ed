"""Active health checks: probes over real sockets feeding the health state."""

from __future__ import annotations

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
from relaybit.upstream.checker import HealthChecker, ProbeResult
from relaybit.upstream.health import NodeState
from relaybit.upstream.node import Node, UpstreamSettings
from relaybit.upstream.upstream import Connection, Upstream

PROBE = line_sender(b"ping\n", timeout=5.0)


async def open_line(node: Node) -> Connection:
    return await line_connector(node, node.host, node.port)


def checker(results: list[ProbeResult], *, timeout: float = 1.0) -> HealthChecker:
    return HealthChecker(
        open_line,
        PROBE,
        interval=0.01,
        timeout=timeout,
        on_result=lambda node, result: results.append(result),
        clock=FakeClock(),
    )


async def test_probe_passes_on_a_live_node() -> None:
    async with LineServer() as server:
        result = await checker([]).check_once(make_node("n", server.port))
        assert result.ok
        assert server.lines == [b"ping\n"]
        await eventually(lambda: server.open_connections == 0)


async def test_probe_fails_on_a_refused_node() -> None:
    result = await checker([]).check_once(make_node("n", closed_port()))
    assert (result.ok, result.kind) == (False, "connect")
    assert result.message == "connection refused"


async def test_probe_times_out_on_a_hung_node() -> None:
    async with LineServer(hang=True) as server:
        result = await checker([], timeout=0.05).check_once(make_node("n", server.port))
        assert (result.ok, result.kind) == (False, "timeout")
        assert result.message == "probe timed out after 0.05s"


async def test_connect_only_probe_when_the_output_has_none() -> None:
    async with LineServer() as server:
        hc = HealthChecker(open_line, None, interval=1.0, timeout=1.0, on_result=lambda n, r: None)
        assert (await hc.check_once(make_node("n", server.port))).ok
        assert server.lines == []


async def test_tasks_probe_repeatedly_and_stop() -> None:
    results: list[ProbeResult] = []
    async with LineServer() as server:
        hc = checker(results)
        node = make_node("n", server.port)
        hc.sync([node])
        await eventually(lambda: len(results) >= 3)
        assert "nodes=['n']" in repr(hc)
        hc.sync([])
        await hc.stop()
        count = len(results)
        assert all(r.ok and r.node == "n" for r in results)
        assert count >= 3


async def test_upstream_marks_a_dead_node_unhealthy_then_healthy_again() -> None:
    async with LineServer() as good:
        port = closed_port()
        settings = UpstreamSettings(
            health_check=True,
            health_check_interval=0.01,
            health_check_timeout=1.0,
            unhealthy_threshold=2,
            healthy_threshold=2,
        )
        spec = make_spec(make_node("a", port), make_node("b", good.port), settings=settings)
        up = Upstream(spec, line_connector, probe=PROBE, clock=FakeClock(), owner="forward.0")
        await up.start()
        try:
            await eventually(lambda: up.node_state("a") is NodeState.UNHEALTHY)
            for _ in range(3):
                assert (await up.deliver(line_sender())).name == "b"
            status = up.status()["nodes"][0]
            assert status["state"] == "unhealthy"
            assert status["counters"]["probes_failed"] >= 2
            assert status["last_error"]["message"] == "probe: connection refused"
            async with LineServer(port=port) as revived:
                await eventually(lambda: up.node_state("a") is NodeState.HEALTHY)
                assert revived.lines and set(revived.lines) == {b"ping\n"}
                chosen = {(await up.deliver(line_sender())).name for _ in range(2)}
                assert chosen == {"a", "b"}
                await up.stop()
        finally:
            await up.stop()


async def test_an_unexpected_probe_error_is_a_failed_probe_not_a_dead_task() -> None:
    """A probe raising something else than a DeliveryError/OSError (a bug, a ValueError
    from a library) is a failed probe: the node keeps being probed, and stop() does
    not re-raise it (it used to kill the node's probe task silently, so an ejected
    node was never probed back, and Upstream.stop() raised before closing its pools)."""
    calls = 0

    async def flaky(node: Node, connection: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("server_hostname cannot be an empty string")

    results: list[ProbeResult] = []
    async with LineServer() as server:
        hc = HealthChecker(
            open_line,
            flaky,
            interval=0.01,
            timeout=1.0,
            on_result=lambda node, result: results.append(result),
            clock=FakeClock(),
        )
        hc.sync([make_node("n", server.port)])
        await eventually(lambda: len(results) >= 2)
        await hc.stop()
    assert (results[0].ok, results[0].kind) == (False, "probe")
    assert "ValueError" in results[0].message
    assert results[1].ok


async def test_nodes_removed_by_reload_do_not_pile_up_in_the_checker() -> None:
    async with LineServer() as server:
        hc = checker([])
        for i in range(3):  # a node re-pointed three times: each sync stops the old task
            hc.sync([make_node("n", server.port, host=f"127.0.0.{i + 1}")])
        hc.sync([])
        await eventually(lambda: "stopping" not in repr(hc))
        await hc.stop()
