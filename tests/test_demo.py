"""The live demo: its receivers, its generated files, and a real run as a subprocess."""

from __future__ import annotations

import importlib.util
import ssl
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from relaybit import demo
from relaybit.net.forward_client import ForwardClient
from relaybit.upstream.spec import load_upstream_file

AGENT_READY = importlib.util.find_spec("relaybit.agent") is not None


def entries(n: int) -> bytes:
    return b"".join(msgpack.packb([1700000000, {"i": i}]) for i in range(n))


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def test_tls_shared_key_node_counts_and_survives_kill_restore(tmp_path: Path) -> None:
    tls = demo._tls_context(tmp_path)
    assert tls is not None
    node = demo.DemoNode("node-3", tls=tls, shared_key=demo.DEMO_KEY)
    await node.start()
    port = node.port
    try:
        client = await ForwardClient.connect(
            "127.0.0.1", port, ssl=client_tls(), shared_key=demo.DEMO_KEY
        )
        await client.send_chunk("t", entries(5), 5, require_ack=True, ack_timeout=5)
        await client.aclose()
        assert node.received == 5
        await node.kill()
        assert not node.up and "down" in repr(node)
        await node.restore()
        assert node.port == port and node.up
        client = await ForwardClient.connect(
            "127.0.0.1", port, ssl=client_tls(), shared_key=demo.DEMO_KEY
        )
        await client.send_chunk("t", entries(3), 3, require_ack=True, ack_timeout=5)
        await client.aclose()
        assert node.received == 8
    finally:
        await node.kill()


def test_generated_upstream_file_loads(tmp_path: Path) -> None:
    nodes = [
        demo.DemoNode("node-1", port=40001),
        demo.DemoNode("node-2", port=40002),
        demo.DemoNode("node-3", port=40003, tls=ssl.create_default_context(), shared_key="k"),
    ]
    path = tmp_path / "upstream.conf"
    path.write_text(demo.upstream_conf(nodes))
    spec = load_upstream_file(path)
    assert [(n.name, n.port, n.tls.enabled) for n in spec.nodes] == [
        ("node-1", 40001, False),
        ("node-2", 40002, False),
        ("node-3", 40003, True),
    ]
    assert "shared_key" in spec.nodes[2].extra


@pytest.mark.slow
@pytest.mark.skipif(not AGENT_READY, reason="relaybit.agent has not landed yet")
def test_demo_runs_and_loses_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "relaybit", "--demo", "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = [line for line in proc.stdout.splitlines() if line.startswith("records sent")]
    assert summary, proc.stdout[-2000:]
    assert "none lost" in summary[-1]
