"""Encoder workers under faults: killed (-9) mid-run, their agent killed, a hot reload.

Every line reaches Elasticsearch once, and no worker is left behind.

A real agent process tails a growing file to the es output; a bulk API server
in this test process (a thread, following Elasticsearch's documented bulk
request and response format) stores each document.  The encoder worker is
killed twice while lines flow: the agent writes those chunks itself, starts the
worker again, and not a line is missing or stored twice.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import (
    AgentProc,
    LineWriter,
    Processes,
    agent_conf,
    free_port,
    http_json,
    monitoring,
    tail_input,
    tally,
    wait_until,
    write_until,
)


class BulkStore(ThreadingHTTPServer):
    """Documents of ``POST /_bulk`` NDJSON bodies; every item answered 201."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BulkHandler)
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.rows)


class _BulkHandler(BaseHTTPRequestHandler):
    server: BulkStore

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        lines = body.splitlines()
        items = []
        docs = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            (op,) = json.loads(action)
            docs.append({"record": json.loads(source)})
            items.append({op: {"_index": "fluent-bit", "status": 201}})
        with self.server.lock:
            self.server.rows.extend(docs)
        answer = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def store() -> Iterator[BulkStore]:
    server = BulkStore()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def encoder_workers(agent_pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(agent_pid).children()
        if "relaybit.plugins.outputs.encoder_worker" in " ".join(child.cmdline())
    ]


def encoder(api: int) -> dict[str, int]:
    """The agent's encoder processes as ``/api/v1/metrics`` shows them."""
    found: dict[str, int] = http_json(api, "/api/v1/metrics")["encoder"]
    return found


def start_agent(
    procs: Processes, tmp_path: Path, store: BulkStore, lines: int, **service: Any
) -> tuple[LineWriter, AgentProc]:
    """An agent tailing ``lines`` lines (more are written later) to the es output, with
    one encoder worker and ``service`` keys."""
    writer = LineWriter(tmp_path / "app.log")
    config = tmp_path / "agent.conf"
    output = {"name": "es", "match": "*", "host": "127.0.0.1", "port": store.port}
    keys = {"encoder.workers": 1, **service}
    config.write_text(agent_conf([tail_input(writer.path)], output, service=keys))
    writer.write(lines)
    agent = procs.agent(config)
    agent.wait_started()
    return writer, agent


def test_encoder_worker_kill9_mid_run(procs: Processes, tmp_path: Path, store: BulkStore) -> None:
    api = free_port()
    writer, agent = start_agent(procs, tmp_path, store, 500, **monitoring(api))
    for restarts in (0, 1):
        # the worker (first or started again) writes chunks: it is up, then it is killed
        chunks = encoder(api)["chunks"]
        write_until(
            writer,
            lambda seen=chunks: encoder(api)["chunks"] >= seen + 3,  # type: ignore[misc]
            what="chunks written by the encoder worker",
        )
        (worker,) = encoder_workers(agent.pid)
        worker.kill()
        worker.wait(10)
        write_until(
            writer,
            lambda n=restarts + 1: encoder(api)["restarts"] == n,  # type: ignore[misc]
            what="the worker's death noticed",
        )
    writer.write(1000)
    wait_until(
        lambda: not tally(store.received(), writer.written).missing,
        what="every line to arrive",
    )
    status = encoder(api)
    assert status["restarts"] == 2 and status["chunks"] >= 6, status
    assert agent.terminate() == 0
    result = tally(store.received(), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    exits = agent.log_lines("encoder worker 0 exited")
    assert len(exits) == 2, agent.log()
    assert "Traceback" not in agent.log()


def test_the_worker_ends_with_an_agent_killed_by_sigkill(
    procs: Processes, tmp_path: Path, store: BulkStore
) -> None:
    _, agent = start_agent(procs, tmp_path, store, 100)
    (worker,) = wait_until(lambda: encoder_workers(agent.pid), what="an encoder worker")
    wait_until(lambda: len(store.received()) >= 100, what="the lines")
    agent.kill9()
    # its control pipe closed with the agent: the worker exits on its own
    wait_until(lambda: not worker.is_running(), what="the orphaned worker to exit")


def test_a_hot_reload_replaces_the_worker_and_leaves_none_behind(
    procs: Processes, tmp_path: Path, store: BulkStore
) -> None:
    api = free_port()
    writer, agent = start_agent(procs, tmp_path, store, 500, hot_reload="on", **monitoring(api))
    write_until(writer, lambda: encoder(api)["chunks"] >= 2, what="chunks written by the worker")
    (old,) = encoder_workers(agent.pid)
    request = urllib.request.Request(f"http://127.0.0.1:{api}/api/v2/reload", method="PUT")
    with urllib.request.urlopen(request, timeout=20) as answer:
        assert json.loads(answer.read()) == {"reload": "done", "status": 0}
    write_until(writer, lambda: not old.is_running(), what="the old pipeline's worker to exit")
    write_until(writer, lambda: encoder(api)["chunks"] >= 2, what="the new worker writing")
    assert [p.pid for p in encoder_workers(agent.pid)] != [old.pid]
    assert len(encoder_workers(agent.pid)) == 1
    writer.write(500)
    wait_until(
        lambda: not tally(store.received(), writer.written).missing, what="every line to arrive"
    )
    assert agent.terminate() == 0
    result = tally(store.received(), writer.written)
    assert (result.missing, result.extra) == ([], [])
    assert "Traceback" not in agent.log()
