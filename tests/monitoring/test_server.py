"""The monitoring server over real sockets, read with a real aiohttp client."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from relaybit.monitoring import server as monitoring
from relaybit.monitoring.metrics import HealthRules

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)


@pytest.fixture
async def served(agent: Any) -> AsyncIterator[tuple[monitoring.MonitoringServer, str]]:
    handle = await monitoring.start(agent, "127.0.0.1", 0)
    try:
        yield handle, f"http://127.0.0.1:{handle.port}"
    finally:
        await handle.close()


async def test_port_zero_binds_a_real_port(
    served: tuple[monitoring.MonitoringServer, str],
) -> None:
    handle, _ = served
    assert handle.port > 0
    assert f":{handle.port}" in repr(handle) and "serving" in repr(handle)


async def test_json_endpoints(served: tuple[monitoring.MonitoringServer, str], agent: Any) -> None:
    _, base = served
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as r:
            assert r.status == 200
            assert (await r.json())["relaybit"]["edition"] == "Community"
        async with http.get(f"{base}/api/v1/uptime") as r:
            up = await r.json()
            assert up["uptime_sec"] >= 0 and "running" in up["uptime_hr"]
        agent.counters["input"]["dummy.0"]["records"] = 1234
        async with http.get(f"{base}/api/v1/metrics") as r:
            doc = await r.json()
            assert doc["input"]["dummy.0"]["records"] == 1234
            assert doc["output"]["forward.0"]["proc_records"] == 10
        async with http.get(f"{base}/api/v1/upstreams") as r:
            ups = await r.json()
            assert list(ups["upstreams"]) == ["forward.0"]
            nodes = ups["upstreams"]["forward.0"]["nodes"]
            assert [n["state"] for n in nodes] == ["healthy", "ejected", "healthy"]
            assert "secret" not in await r.text()


async def test_prometheus_endpoint(served: tuple[monitoring.MonitoringServer, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/metrics/prometheus") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    assert 'fluentbit_output_proc_records_total{name="forward.0"} 10.0' in text
    assert (
        'relaybit_upstream_node_state{node="node-3",output="forward.0",'
        'state="ejected",upstream="forward-balancing"} 1.0'
    ) in text


async def test_health_turns_error_when_every_output_only_fails(agent: Any) -> None:
    clock = [0.0]
    handle = monitoring.MonitoringServer(
        agent, rules=HealthRules(period=10), monotonic=lambda: clock[0]
    )
    await handle.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{handle.port}/api/v1/health"
            async with http.get(url) as r:
                assert (r.status, await r.text()) == (200, "ok")
            for out in agent.counters["output"].values():
                out["retries"] += 5
            clock[0] = 3.0
            async with http.get(url) as r:
                assert (r.status, await r.text()) == (500, "error")
            agent.counters["output"]["stdout.0"]["proc_records"] += 1
            clock[0] = 4.0
            async with http.get(url) as r:
                assert (r.status, await r.text()) == (200, "ok")
    finally:
        await handle.close()
    assert "closed" in repr(handle)


async def test_health_reads_fluent_bit_service_keys(agent: Any) -> None:
    agent.service = {"health_check": "on", "hc_errors_count": 0, "hc_period": 60}
    handle = await monitoring.start(agent, "127.0.0.1", 0)
    try:
        assert handle.health.rules.fluent_bit_rules
        assert handle.health.rules.errors_count == 0
    finally:
        await handle.close()


async def test_status_page_is_served(served: tuple[monitoring.MonitoringServer, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession() as http, http.get(f"{base}/status") as r:
        assert r.status == 200 and r.content_type == "text/html"
        assert "/api/v1/upstreams" in await r.text()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
async def test_status_page_renders_node_states_in_chromium(
    served: tuple[monitoring.MonitoringServer, str],
) -> None:
    _, base = served
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            f"{base}/status",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    dom = out.decode()
    assert 'data-loaded="true"' in dom
    assert 'data-node="node-1" data-state="healthy"' in dom
    assert 'data-node="node-3" data-state="ejected"' in dom
    # the last error is its message (kind as a tooltip), never "[object Object]"
    assert "certificate verify failed" in dom and "[object Object]" not in dom
    assert 'title="tls at ' in dom
    assert "until " in dom  # an ejected node says until when
    node4 = dom[dom.index('data-node="node-4"') :].split("</tr>")[0]
    assert '<span class="state standby">standby</span>' in node4


async def test_chunk_trace_api_is_refused_with_the_reason(
    served: tuple[monitoring.MonitoringServer, str],
) -> None:
    """Fluent Bit's /api/v1/trace: 501 saying why, never a silent 404 (issue 13)."""
    _, base = served
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/api/v1/trace"), ("POST", "/api/v1/trace/dummy.0")):
            async with http.request(method, base + path, json={"output": "stdout"}) as r:
                assert r.status == 501
                body = await r.json()
                assert body["status"] == "error" and "chunk trace" in body["error"]
