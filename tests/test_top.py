"""``relaybit top`` without a terminal: its messages and one view (``--once``).

The live view in a real terminal (tmux) is tests/integration/test_top.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from relaybit.agent import Agent
from relaybit.config.loader import load_config
from relaybit.testing import closed_port


def top(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaybit", "top", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_an_unreachable_api_is_a_clear_message_and_exit_1() -> None:
    port = closed_port()
    proc = top("--url", f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    out = " ".join(proc.stdout.split())
    assert f"no monitoring API at http://127.0.0.1:{port}" in out
    assert "Connection refused" in out
    assert "-H" in out and "http_server on" in out  # says how to turn it on


def test_a_host_port_without_scheme_is_accepted() -> None:
    proc = top("--url", f"127.0.0.1:{closed_port()}")
    assert proc.returncode == 1 and "no monitoring API at http://127.0.0.1:" in proc.stdout


async def test_once_prints_inputs_outputs_and_storage_of_a_running_agent(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[SERVICE]\n    flush 0.1\n"
        "[INPUT]\n    name dummy\n    tag t\n    rate 100\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    try:
        base = f"http://127.0.0.1:{agent.monitoring.port}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "relaybit",
            "top",
            "--url",
            base,
            "--once",
            "--interval",
            "0.5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        text = out.decode()
        for word in ("dummy.0", "null.0", "records/s", "bytes/s", "storage", "memory"):
            assert word in text, text
        # a path that is not the API: a 404 is named as such
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "relaybit",
            "top",
            "--url",
            f"{base}/nope",
            "--once",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 1
        assert "404" in out.decode() and "not a relaybit monitoring API" in " ".join(
            out.decode().split()
        )
    finally:
        await agent.stop()


def test_node_failures_count_every_shape_the_api_gives() -> None:
    from relaybit.top import _failures

    # the same reading as the Prometheus exporter (monitoring.history.failures_by_kind)
    assert _failures({"counters": {"failures": {"connect": 2, "timeout": 1}}}) == 3
    assert _failures({"counters": {"failures": 4}}) == 4
    assert _failures({"counters": {"failures_connect": 2, "failures_ack_timeout": 5}}) == 7
    assert _failures({"failures": 1}) == 1
    assert _failures({}) == 0
