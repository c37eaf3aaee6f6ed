"""The forward input of a real agent under abuse, all at once: thousands of idle
connections, random bytes, frames cut short, msgpack bombs, a declared 100 MB
frame and slow frames, while a well-behaved fluent-logger client sends 20,000
records with acks. Every valid record arrives, a new client is served at once,
the agent's peak RSS stays under the target and its log does not flood."""

from __future__ import annotations

import random
import resource
import socket
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest
from fluent.sender import FluentSender
from support import (
    AgentProc,
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

RECORDS = 20_000
MB = 2**20
NESTED_BOMBS = [
    b"\x93\xa3tag\x01\xdf\xff\xff\xff\xff",  # a record of four billion pairs
    b"\x93\xa3tag\x01\x81\xa1k\xdd\x7f\xff\xff\xff",  # an array of two billion in one
] * 5


class AckedSender(FluentSender):  # type: ignore[misc]
    """fluent-logger's FluentSender asking for an ack per record (the ``chunk``
    option Fluentd's out_forward sends with ``require_ack_response``) and
    waiting for it, so a record counts as sent only once the agent stored it."""

    def _make_packet(self, label: Any, timestamp: Any, data: Any) -> bytes:
        self._chunk = uuid.uuid4().hex
        tag = f"{self.tag}.{label}" if label else self.tag
        packed: bytes = msgpack.packb((tag, timestamp, data, {"chunk": self._chunk}))
        return packed

    def _send_data(self, bytes_: bytes) -> None:
        self._reconnect()
        self.socket.sendall(bytes_)
        unpacker = msgpack.Unpacker()
        while True:
            data = self.socket.recv(4096)
            if not data:
                raise OSError("the agent closed the connection before the ack")
            unpacker.feed(data)
            for answer in unpacker:
                if answer != {"ack": self._chunk}:
                    raise OSError(f"unexpected answer {answer!r}")
                return


def _fd_budget(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the idle connections it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + 1000)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return min(wanted, int(soft) - 600)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return int(psutil.Process(pid).memory_info().rss)  # pragma: no cover


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _send_then_close(port: int, data: bytes) -> None:
    try:
        with _connect(port) as sock:
            sock.sendall(data)
            sock.settimeout(5)
            sock.recv(100)  # the agent closes it
    except OSError:
        pass


def _abuse(port: int, result: dict[str, Any]) -> None:
    """Random bytes, frames cut short, msgpack bombs, a declared 100 MB frame."""
    rng = random.Random(14)
    frame = msgpack.packb(["abuse", 1700000000, {"k": "v" * 40}])
    bomb = b"\x92\xa3tag\xdd\xff\xff\xff\xff"  # four billion entries: refused at its header
    for _ in range(100):
        _send_then_close(port, b"\x01" + rng.randbytes(rng.randint(20, 400)))
        with _connect(port) as sock:  # cut short: the client goes away mid-frame
            sock.sendall(frame[: rng.randint(1, len(frame) - 1)])
        _send_then_close(port, bomb)
    # a frame that declares 100 MB: closed at its header, the body is never read
    sent = 0
    try:
        with _connect(port) as sock:
            sock.sendall(b"\x93\xa5abuse\xc6" + (100 * MB).to_bytes(4, "big"))
            block = b"x" * 65536
            while sent < 100 * MB:
                sock.sendall(block)
                sent += len(block)
    except OSError:
        pass
    result["sent_of_100mb"] = sent


def _slow_frames(port: int, count: int, seconds: float) -> None:
    """Frames trickled a byte at a time, and bombs nested in a record (nothing is
    built while they wait for the rest): all cut by frame_timeout."""
    frame = msgpack.packb(["slow", 1700000000, {"k": "v" * 200}])
    socks = [_connect(port) for _ in range(count)]
    for nested in NESTED_BOMBS:
        sock = _connect(port)
        sock.sendall(nested)
        socks.append(sock)
    deadline = time.monotonic() + seconds
    pos = 0
    while time.monotonic() < deadline and pos < len(frame) - 1:
        for sock in socks:
            try:
                sock.sendall(frame[pos : pos + 1])
            except OSError:
                pass
        pos += 1
        time.sleep(0.25)
    for sock in socks:
        sock.close()


def _valid_client(port: int, result: dict[str, Any]) -> None:
    sender = AckedSender("app", host="127.0.0.1", port=port, timeout=10)
    failures = 0
    started = time.monotonic()
    for seq in range(1, RECORDS + 1):
        if not sender.emit("log", {"seq": seq, "msg": "a well-behaved client"}):
            failures += 1
    sender.close()
    result["failures"] = failures
    result["seconds"] = time.monotonic() - started


def _served_at_once(port: int) -> float:
    """Seconds for a new client to connect, send a record and get its ack."""
    started = time.monotonic()
    sender = AckedSender("app", host="127.0.0.1", port=port, timeout=10)
    assert sender.emit("log", {"seq": RECORDS + 1, "msg": "a new client"}), sender.last_error
    sender.close()
    return time.monotonic() - started


def _start(procs: Processes, tmp_path: Path, idle: int) -> tuple[Any, AgentProc, int, int]:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    port, api = free_port(), free_port()
    forward_input = {
        "name": "forward",
        "listen": "127.0.0.1",
        "port": port,
        "max_connections": idle + 1000,
        "frame_timeout": "2s",
    }
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([forward_input], forward_output(), service=monitoring(api)))
    agent = procs.agent(config)
    agent.wait_started()
    return receiver, agent, port, api


@pytest.mark.parametrize(("wanted", "limit_mb"), [(3000, 100), (10_000, 150)])
def test_forward_input_under_abuse(
    procs: Processes, tmp_path: Path, wanted: int, limit_mb: int
) -> None:
    idle_count = _fd_budget(wanted)
    if idle_count < wanted:
        if wanted > 3000:
            pytest.skip(f"ulimit -n allows {idle_count + 600} descriptors, {wanted} idle need more")
        print(f"ulimit -n: {idle_count} idle connections instead of {wanted}")
    receiver, agent, port, api = _start(procs, tmp_path, idle_count)

    def metrics() -> dict[str, Any]:
        value: dict[str, Any] = http_json(api, "/api/v1/metrics")["input"]["forward.0"]
        return value

    before = psutil.Process(agent.pid).memory_info().rss
    idle = []
    for i in range(idle_count):
        idle.append(_connect(port))
        if i % 1000 == 999:  # let the agent keep up with the accept queue
            wait_until(lambda n=i + 1: metrics()["connections"] >= n, what=f"{i + 1} idle")
    wait_until(lambda: metrics()["connections"] >= idle_count, what="the idle connections")
    with_idle = psutil.Process(agent.pid).memory_info().rss

    valid: dict[str, Any] = {}
    abuse: dict[str, Any] = {}
    threads = [
        threading.Thread(target=_valid_client, args=(port, valid)),
        threading.Thread(target=_abuse, args=(port, abuse)),
        threading.Thread(target=_slow_frames, args=(port, 20, 4.0)),
    ]
    for thread in threads:
        thread.start()
    at_once = _served_at_once(port)  # while the abuse runs
    for thread in threads:
        thread.join(timeout=120)
    assert valid["failures"] == 0, valid

    # every valid record arrives, once
    wait_until(
        lambda: tally(received([receiver]), RECORDS + 1).complete, timeout=60, what="every record"
    )
    result = tally(received([receiver]), RECORDS + 1)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert at_once < 2.0, at_once

    # the abuse was refused early and counted by reason
    assert abuse["sent_of_100mb"] < 20 * MB, abuse
    rejected = metrics()["rejected"]
    assert rejected["too_large"] >= 101  # the top-level bombs and the 100 MB frame
    assert rejected["malformed"] >= 200  # random bytes and frames cut short
    wait_until(lambda: metrics()["rejected"]["timeout"] >= 30, what="slow frames and bombs cut")
    url = f"http://127.0.0.1:{api}/api/v1/metrics/prometheus"
    with urllib.request.urlopen(url, timeout=5) as response:
        prometheus = response.read().decode()
    assert 'relaybit_input_rejected_total{name="forward.0",reason="too_large"}' in prometheus

    # the idle clients are still connected; memory stayed under the target
    assert metrics()["connections"] >= idle_count
    peak = _peak_rss(agent.pid)
    print(
        f"{idle_count} idle: {before / MB:.0f} -> {with_idle / MB:.0f} MiB"
        f" ({(with_idle - before) / idle_count / 1024:.1f} KiB each), peak {peak / MB:.0f} MiB;"
        f" 20,000 acked records in {valid['seconds']:.1f}s; a new client served in"
        f" {at_once * 1000:.0f} ms; 100 MB frame: {abuse['sent_of_100mb']} bytes sent"
    )
    assert peak < limit_mb * MB, peak / MB

    # the log holds the first lines per reason and summaries, not one line per connection
    closing = agent.log_lines("closing connection from")
    assert len(closing) <= 3 * 5, closing
    assert "Traceback" not in agent.log()
    for sock in idle:
        sock.close()
    assert agent.terminate() == 0
    summaries = agent.log_lines("more connections closed for")
    assert summaries, agent.log()[-2000:]
