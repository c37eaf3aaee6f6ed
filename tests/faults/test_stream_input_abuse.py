"""The tcp and syslog (tcp mode) inputs of a real agent under abuse: 1,000 idle
connections, garbage, slow records and clients over the ceiling while a valid
client sends 5,000 records: every record arrives, memory and log stay bounded."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import (
    Processes,
    agent_conf,
    forward_output,
    free_port,
    http_json,
    monitoring,
    node,
    received,
    upstream_conf,
    wait_until,
)

IDLE = 1000
RECORDS = 5000
MB = 2**20


def _line(kind: str, seq: int) -> bytes:
    if kind == "tcp":
        return json.dumps({"seq": seq}).encode() + b"\n"
    return f"<13>1 2026-01-01T00:00:00Z host app - - - {seq}\n".encode()


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")  # pragma: no cover


def _garbage(port: int) -> None:
    rng = random.Random(14)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(rng.randbytes(rng.randint(20, 400)) + b"\n")
        except OSError:
            pass


def _slow(port: int, count: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        for sock in socks:
            try:
                sock.sendall(b"x")  # a record that never ends
            except OSError:
                pass
        time.sleep(0.2)
    for sock in socks:
        sock.close()


@pytest.mark.parametrize("kind", ["tcp", "syslog"])
def test_stream_input_under_abuse(procs: Processes, tmp_path: Path, kind: str) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    port, api = free_port(), free_port()
    server_input: dict[str, Any] = {
        "name": kind,
        "listen": "127.0.0.1",
        "port": port,
        "tag": "app",
        "frame_timeout": "1s",
        "max_connections": IDLE + 100,
    }
    if kind == "syslog":
        server_input["mode"] = "tcp"
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([server_input], forward_output(), service=monitoring(api)))
    agent = procs.agent(config)
    agent.wait_started()

    def metrics() -> dict[str, Any]:
        value: dict[str, Any] = http_json(api, "/api/v1/metrics")["input"][f"{kind}.0"]
        return value

    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(IDLE)]
    wait_until(lambda: metrics()["connections"] >= IDLE, what="the idle connections")
    valid = socket.create_connection(("127.0.0.1", port), timeout=10)
    threads = [
        threading.Thread(target=_garbage, args=(port,)),
        threading.Thread(target=_slow, args=(port, 20)),
    ]
    for thread in threads:
        thread.start()
    half = RECORDS // 2
    for start in range(1, half + 1, 500):
        valid.sendall(b"".join(_line(kind, n) for n in range(start, start + 500)))
    for thread in threads:
        thread.join(timeout=60)
    # over the ceiling: new clients refused at once, the valid one still served
    over = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
    for start in range(half + 1, RECORDS + 1, 500):
        valid.sendall(b"".join(_line(kind, n) for n in range(start, start + 500)))
    valid.close()

    def seqs() -> list[int]:
        rows = received([receiver])
        if kind == "tcp":
            return sorted(int(r["record"]["seq"]) for r in rows)
        return sorted(int(r["record"]["message"]) for r in rows)

    wait_until(lambda: len(seqs()) >= RECORDS, timeout=60, what="every record")
    assert seqs() == list(range(1, RECORDS + 1))

    wait_until(lambda: metrics()["rejected"]["timeout"] >= 20, what="slow records cut")
    counts = metrics()
    assert counts["rejected"]["malformed"] >= 50
    assert counts["connections_refused"] >= 50
    assert counts["connections"] >= IDLE
    peak = _peak_rss(agent.pid)
    print(f"{kind}: peak RSS {peak / MB:.0f} MiB with {IDLE} idle connections", counts)
    assert peak < 100 * MB
    log = agent.log()
    assert "Traceback" not in log
    assert len(agent.log_lines("closing connection from")) <= 5
    assert len(agent.log_lines("refusing new connections")) <= 2
    for sock in idle + over:
        sock.close()
    assert agent.terminate() == 0
    warned = agent.log_lines("malformed", "logged once per connection")
    assert len(warned) <= 5, warned
