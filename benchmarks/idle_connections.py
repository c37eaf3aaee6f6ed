"""Memory per idle connection of a server input: a real agent, N idle clients, RSS.

    python benchmarks/idle_connections.py [--input http] [--connections 1000,3000,10000]

Starts ``relaybit -c <generated config>`` with one server input (``http``,
``elasticsearch``, ``forward``, ``tcp`` or ``syslog`` in tcp mode) on 127.0.0.1 and a ``null`` output,
opens N TCP connections that send nothing (for ``http``/``elasticsearch``:
nothing after connecting; ``http_server.idle_timeout`` is raised so they stay),
waits until the input counts them (monitoring API, when the input reports
``connections``) and prints the agent's RSS before and with them, and the RSS
per connection, and the agent's peak RSS (VmHWM).  For ``forward``, ``tcp`` and ``syslog``
1 connection in 100 then sends one small valid frame or line (read, stored,
and the connection idle again) before the RSS is read.  The client needs N
file descriptors: its soft RLIMIT_NOFILE is raised to the hard limit, and a
count the limit cannot hold is skipped with the reason (the agent raises its
own at start).
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

PORTS = {"http": 9880, "elasticsearch": 9200, "forward": 24224, "tcp": 5170, "syslog": 5140}
#: one small valid frame or line, sent on 1 connection in 100
TRAFFIC = {
    "forward": b"\x93\xa5bench\xce\x65\x53\xf1\x00\x81\xa3msg\xa5hello",
    "tcp": b'{"msg": "hello"}\n',
    "syslog": b"<13>1 2026-01-01T00:00:00Z host app - - - hello\n",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def config(plugin: str, port: int, api: int) -> str:
    extra = ""
    if plugin in ("http", "elasticsearch"):
        extra = "    http_server.idle_timeout 0\n    http_server.max_connections 0\n"
    elif plugin in ("forward", "tcp"):
        extra = "    max_connections 0\n"
    elif plugin == "syslog":
        extra = "    mode tcp\n    max_connections 0\n"
    return (
        "[SERVICE]\n    flush 1\n    log_level warn\n"
        f"    http_server on\n    http_listen 127.0.0.1\n    http_port {api}\n"
        f"[INPUT]\n    name {plugin}\n    listen 127.0.0.1\n    port {port}\n{extra}"
        "[OUTPUT]\n    name null\n    match *\n"
    )


def input_metrics(api: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/metrics", timeout=5) as r:
        doc: dict[str, Any] = json.loads(r.read())
    values: dict[str, Any] = next(iter(doc.get("input", {}).values()), {})
    return values


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run(plugin: str, count: int) -> dict[str, float]:
    port, api = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "agent.conf"
        conf.write_text(config(plugin, port, api))
        agent = subprocess.Popen(
            [sys.executable, "-m", "relaybit", "-c", str(conf)],
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        socks: list[socket.socket] = []
        try:
            wait(lambda: input_metrics(api) is not None, 20, "the agent")
            proc = psutil.Process(agent.pid)
            time.sleep(0.5)
            base = proc.memory_info().rss
            for _ in range(count):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            if "connections" in input_metrics(api):
                wait(lambda: input_metrics(api)["connections"] >= count, 60, "the connections")
            else:
                time.sleep(1.0)
            for sock in socks[::100] if plugin in TRAFFIC else ():
                sock.sendall(TRAFFIC[plugin])
            time.sleep(1.0)  # read, stored, idle again
            rss = proc.memory_info().rss
            peak = vm_hwm(agent.pid) or rss
        finally:
            for sock in socks:
                sock.close()
            agent.terminate()
            agent.wait(20)
    return {
        "connections": count,
        "rss_before_mb": base / 2**20,
        "rss_with_mb": rss / 2**20,
        "per_connection_kb": (rss - base) / count / 1024,
        "peak_mb": peak / 2**20,
    }


def vm_hwm(pid: int) -> int | None:
    """The peak RSS of ``pid`` (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def raise_nofile() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="http", choices=sorted(PORTS))
    parser.add_argument("--connections", default="1000,3000")
    args = parser.parse_args()
    limit = raise_nofile()
    print(
        f"{'input':<14} {'connections':>11} {'RSS before':>11} {'RSS with':>10} {'per conn':>9}"
        f" {'peak':>9}"
    )
    for count in (int(n) for n in args.connections.split(",")):
        if count + 100 > limit:
            print(f"skipped {count} connections: this process may open {limit} files")
            continue
        row = run(args.input, count)
        print(
            f"{args.input:<14} {count:>11} {row['rss_before_mb']:>9.1f}MB"
            f" {row['rss_with_mb']:>8.1f}MB {row['per_connection_kb']:>7.1f}KB"
            f" {row['peak_mb']:>7.1f}MB"
        )


if __name__ == "__main__":
    main()
