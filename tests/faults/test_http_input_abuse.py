"""The http input of a real agent under abuse: idle connections in bounded memory,
slowloris, a 100 MB declared body, garbage; a valid client's records all arrive."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from support import (
    Processes,
    agent_conf,
    forward_output,
    free_port,
    http_json,
    monitoring,
    node,
    received,
    tally,
    upstream_conf,
    wait_until,
)

IDLE = 1000
SLOW = 50
VALID_REQUESTS = 100
PER_REQUEST = 20


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def _peak_rss(pid: int) -> int:
    """The process's peak RSS (VmHWM), else its RSS now."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _rss(pid)


def _post(port: int, path: str, records: list[dict[str, Any]]) -> int:
    body = json.dumps(records).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _big_body(port: int, result: dict[str, Any]) -> None:
    """Declare 100 MB and try to send it all; record how far it got and the answer."""
    sock = _connect(port)
    sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
    block = b"x" * 65536
    sent = 0
    try:
        while sent < 100 * 1024 * 1024:
            sock.sendall(block)
            sent += len(block)
    except OSError:
        pass
    result["sent"] = sent
    try:
        result["answer"] = sock.recv(200)
    except OSError as exc:
        result["answer"] = repr(exc).encode()
    sock.close()


def _slowloris(socks: list[socket.socket], seconds: float) -> None:
    """Drip one header line per connection every 0.3 s."""
    deadline = time.monotonic() + seconds
    for sock in socks:
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\n")
    while time.monotonic() < deadline:
        for sock in socks:
            try:
                sock.sendall(b"X-Drip: 1\r\n")
            except OSError:
                pass
        time.sleep(0.3)


def test_http_input_under_abuse(procs: Processes, tmp_path: Path) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    port, api = free_port(), free_port()
    http_input = {
        "name": "http",
        "listen": "127.0.0.1",
        "port": port,
        "net.io_timeout": "2s",
        "http_server.idle_timeout": "60s",
    }
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([http_input], forward_output(), service=monitoring(api)))
    agent = procs.agent(config)
    agent.wait_started()
    assert agent.log_lines(f"listening on 127.0.0.1:{port}")

    def metrics() -> dict[str, Any]:
        value: dict[str, Any] = http_json(api, "/api/v1/metrics")["input"]["http.0"]
        return value

    # 1,000 idle connections: a few KB each
    base = _rss(agent.pid)
    idle = [_connect(port) for _ in range(IDLE)]
    wait_until(lambda: metrics()["connections"] >= IDLE, what="the idle connections")
    per_connection = (_rss(agent.pid) - base) / IDLE
    print(f"RSS per idle connection: {per_connection / 1024:.1f} KiB")
    assert per_connection < 16 * 1024

    # abuse, all at once: slowloris, a 100 MB body, garbage; and a valid client
    slow = [_connect(port) for _ in range(SLOW)]
    drip = threading.Thread(target=_slowloris, args=(slow, 4.0))
    big: dict[str, Any] = {}
    bigger = threading.Thread(target=_big_body, args=(port, big))
    drip.start()
    bigger.start()
    rng = random.Random(14)
    for _ in range(100):
        with _connect(port) as sock:
            sock.sendall(rng.randbytes(rng.randint(20, 400)) + b"\r\n\r\n")
    statuses = []
    for i in range(VALID_REQUESTS):
        records = [{"seq": i * PER_REQUEST + j + 1} for j in range(PER_REQUEST)]
        statuses.append(_post(port, "/app", records))
    drip.join()
    bigger.join()
    assert set(statuses) == {201}

    # every valid record arrives
    total = VALID_REQUESTS * PER_REQUEST
    wait_until(lambda: tally(received([receiver]), total).complete, timeout=30, what="every record")
    result = tally(received([receiver]), total)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)

    # the big body was cut early with a 413, slow clients were timed out
    assert big["sent"] < 20 * 1024 * 1024, big
    counts = metrics()["rejected"]
    assert counts["too_large"] == 1
    wait_until(lambda: metrics()["rejected"]["timeout"] >= SLOW, what="slowloris timeouts")
    assert metrics()["rejected"]["malformed"] >= 50
    url = f"http://127.0.0.1:{api}/api/v1/metrics/prometheus"
    with urllib.request.urlopen(url, timeout=5) as response:
        prometheus = response.read().decode()
    assert 'relaybit_input_rejected_total{name="http.0",reason="too_large"} 1.0' in prometheus
    assert 'relaybit_input_connections{name="http.0"}' in prometheus
    # the log stays short: the first few per reason, then summaries
    rejected_lines = agent.log_lines("rejected a request")
    assert len(rejected_lines) <= 3 * 5, rejected_lines
    assert "Traceback" not in agent.log()
    # the idle clients are still connected and the agent is alive, in bounded memory
    assert metrics()["connections"] >= IDLE
    assert agent.alive
    peak = _peak_rss(agent.pid)
    print(f"peak RSS of the agent: {peak / 2**20:.0f} MiB; the 100 MB body: {big}")
    assert peak < 150 * 2**20
    for sock in idle + slow:
        sock.close()
    assert agent.terminate() == 0


def test_elasticsearch_input_refuses_a_100_mb_bulk_early(procs: Processes, tmp_path: Path) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    port = free_port()
    es_input = {"name": "elasticsearch", "listen": "127.0.0.1", "port": port, "tag": "es"}
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([es_input], forward_output()))
    agent = procs.agent(config)
    agent.wait_started()
    big: dict[str, Any] = {}
    bigger = threading.Thread(target=_big_body, args=(port, big))
    bigger.start()
    lines = b"".join(
        b'{"index":{}}\n' + json.dumps({"seq": n}).encode() + b"\n" for n in range(1, 501)
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_bulk",
        data=lines,
        headers={"Content-Type": "application/x-ndjson"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["errors"] is False
    bigger.join()
    assert big["sent"] < 20 * 1024 * 1024, big
    wait_until(lambda: tally(received([receiver]), 500).complete, timeout=30, what="the records")
    assert agent.log_lines("rejected a request", "body larger than buffer_max_size")
    assert "Traceback" not in agent.log()
    assert agent.terminate() == 0
