"""``/api/v2/reload``: Fluent Bit's hot reload endpoints on the monitoring server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from relaybit.agent import Agent
from relaybit.config.loader import load_config
from relaybit.monitoring import server as monitoring


def _conf(alias: str, *, hot_reload: str = "on", hc_errors_count: int = 5) -> str:
    return (
        f"[SERVICE]\n    flush 0.05\n    grace 2\n    hot_reload {hot_reload}\n"
        f"    health_check on\n    hc_errors_count {hc_errors_count}\n"
        "[INPUT]\n    name dummy\n    tag t\n    rate 100\n"
        f"[OUTPUT]\n    name null\n    alias {alias}\n    match *\n"
    )


async def _poll_json(http: aiohttp.ClientSession, url: str, check: Any) -> Any:
    deadline = time.monotonic() + 10
    while True:
        async with http.get(url) as r:
            doc = await r.json()
        if check(doc):
            return doc
        assert time.monotonic() < deadline, f"{url}: last answer {doc}"
        await asyncio.sleep(0.02)  # polling interval, not a wait for the result


async def test_an_agent_without_a_reloader_answers_not_enabled(agent: Any) -> None:
    handle = await monitoring.start(agent, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{handle.port}/api/v2/reload"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert (r.status, await r.json()) == (200, {"hot_reload_count": 0})
            async with http.put(url) as r:
                assert r.status == 400
                assert (await r.json())["reload"] == "not enabled"
    finally:
        await handle.close()


async def test_put_and_post_reload_and_get_counts(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(_conf("first"))
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    server = agent.monitoring
    try:
        base = f"http://127.0.0.1:{server.port}"
        url = f"{base}/api/v2/reload"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert (r.status, await r.json()) == (200, {"hot_reload_count": 0})
            conf.write_text(_conf("second", hc_errors_count=0))
            async with http.put(url, data=b"") as r:
                assert r.status == 200
                assert r.content_type == "application/json"
                assert await r.json() == {"reload": "done", "status": 0}
            await _poll_json(http, url, lambda doc: doc == {"hot_reload_count": 1})
            # the same server now reports the new pipeline, health rules included
            metrics = await _poll_json(
                http,
                f"{base}/api/v1/metrics",
                lambda doc: doc["output"].get("second", {}).get("proc_records", 0) > 0,
            )
            assert "first" not in metrics["output"]
            assert agent.monitoring is server and server.health.rules.errors_count == 0

            conf.write_text(_conf("third"))
            async with http.post(url, data=b"") as r:
                assert (r.status, await r.json()) == (200, {"reload": "done", "status": 0})
            await _poll_json(http, url, lambda doc: doc == {"hot_reload_count": 2})
            async with http.delete(url) as r:
                assert r.status == 400
                assert "error" in await r.json()

            # hot_reload off in the running configuration: refused, with a JSON error
            conf.write_text(_conf("fourth", hot_reload="off"))
            async with http.put(url) as r:
                assert r.status == 200
            await _poll_json(http, url, lambda doc: doc == {"hot_reload_count": 3})
            async with http.put(url) as r:
                assert r.status == 400
                body = await r.json()
            assert body["reload"] == "not enabled" and body["status"] == -1
            assert "hot_reload on" in body["error"]
            async with http.get(url) as r:
                assert await r.json() == {"hot_reload_count": 3}
    finally:
        await agent.stop()
    assert agent.monitoring is None
