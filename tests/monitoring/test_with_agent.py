"""The monitoring server started by a real Agent ([SERVICE] http_server on, port 0)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from relaybit.agent import Agent
from relaybit.config.loader import load_config


async def test_agent_serves_the_monitoring_api(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[SERVICE]\n    flush 0.1\n    http_server on\n    http_listen 127.0.0.1\n"
        "[INPUT]\n    name dummy\n    tag t\n    rate 100\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    try:
        base = f"http://127.0.0.1:{agent.monitoring.port}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            processed = 0
            while processed == 0 and time.monotonic() < deadline:
                async with http.get(f"{base}/api/v1/metrics") as r:
                    processed = (await r.json())["output"]["null.0"]["proc_records"]
                await asyncio.sleep(0.05)  # polling interval, not a wait for the result
            assert processed > 0
            async with http.get(f"{base}/api/v1/metrics/prometheus") as r:
                text = await r.text()
            assert 'fluentbit_input_records_total{name="dummy.0"}' in text
            async with http.get(f"{base}/api/v1/health") as r:
                assert (r.status, await r.text()) == (200, "ok")
            async with http.get(f"{base}/api/v1/upstreams") as r:
                assert await r.json() == {"upstreams": {}}
    finally:
        await agent.stop()
    assert agent.monitoring is None


async def test_the_storage_api_shows_each_input_and_the_storage_pause(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"[SERVICE]\n    flush 0.1\n    storage.path {tmp_path / 'store'}\n"
        "[INPUT]\n    name dummy\n    tag t\n    rate 100\n    storage.type filesystem\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    try:
        base = f"http://127.0.0.1:{agent.monitoring.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/v1/storage") as r:
                body = await r.json()
            async with http.get(f"{base}/api/v1/metrics/prometheus") as r:
                text = await r.text()
        layer = body["storage_layer"]
        assert layer["type"] == "filesystem" and layer["paused"] is False
        assert layer["write_errors"] == 0 and layer["free_bytes"] > 0
        status = body["input_chunks"]["dummy.0"]["status"]
        assert status["storage"] == "filesystem" and status["paused"] is False
        assert 'relaybit_input_storage_paused{name="dummy.0"} 0.0' in text
        assert agent.metrics()["input"]["dummy.0"]["restarts"] == 0
    finally:
        await agent.stop()


async def test_storage_pipeline_and_history_endpoints(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[SERVICE]\n    flush 0.1\n"
        "[INPUT]\n    name dummy\n    tag app\n    rate 100\n    mem_buf_limit 1M\n"
        "[FILTER]\n    name modify\n    match app\n    add k v\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    try:
        base = f"http://127.0.0.1:{agent.monitoring.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/v1/storage") as r:
                storage = await r.json()
            assert storage["storage_layer"]["chunks"]["fs_chunks"] == 0
            assert storage["input_chunks"]["dummy.0"]["status"]["mem_limit"] == 1024 * 1024
            assert storage["relaybit"]["type"] == "memory"
            assert "null.0" in storage["relaybit"]["outputs"]
            async with http.get(f"{base}/api/v1/pipeline") as r:
                pipeline = await r.json()
            assert pipeline["inputs"] == [{"name": "dummy.0", "plugin": "dummy", "tag": "app"}]
            assert pipeline["filters"][0]["plugin"] == "modify"
            assert pipeline["filters"][0]["match"] == "app"
            assert pipeline["outputs"][0]["match"] == "*"

            history: Any = None
            deadline = time.monotonic() + 10
            while history is None and time.monotonic() < deadline:
                async with http.get(f"{base}/api/v1/history") as r:
                    doc = await r.json()
                rates = doc["inputs"].get("dummy.0", {}).get("records_per_sec", [])
                history = doc if any(rate for rate in rates) else None
                await asyncio.sleep(0.05)  # polling interval, not a wait for the result
            assert history is not None, "no rate sampled within 10 s"
            assert len(history["times"]) == len(history["outputs"]["null.0"]["records_per_sec"])
            async with http.get(f"{base}/api/v1/metrics/prometheus") as r:
                text = await r.text()
            assert 'relaybit_input_mem_buf_limit_bytes{name="dummy.0"} 1.048576e+06' in text
            assert 'relaybit_storage_chunks{state="down"} 0.0' in text
            assert "relaybit_lost_records_total 0.0" in text
    finally:
        await agent.stop()
