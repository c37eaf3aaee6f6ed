"""Two ``relaybit -c`` processes (both on uvloop): an agent whose node lacks ``tls on``
sends, without acks, to a relaybit whose forward input is TLS.

The receiver drops every record it cannot read, so the agent must not count them as
delivered: they stay buffered and are retried, the node's error is logged once; after
``tls on`` is added to the node (SIGHUP re-reads the upstream file) every line arrives.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from support import (
    AgentProc,
    LineWriter,
    Processes,
    agent_conf,
    forward_output,
    free_port,
    http_json,
    monitoring,
    section,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
    write_until,
)


def tls_relaybit(procs: Processes, tmp_path: Path, certs: dict[str, Path]) -> tuple[AgentProc, int]:
    """A relaybit with a TLS forward input; every record goes to ``received/lines``."""
    port = free_port()
    (tmp_path / "received").mkdir()
    forward_in = {
        "name": "forward",
        "listen": "127.0.0.1",
        "port": port,
        "tls": "on",
        "tls.crt_file": certs["cert"],
        "tls.key_file": certs["key"],
    }
    file_out = {"name": "file", "match": "*", "path": tmp_path / "received", "file": "lines"}
    config = tmp_path / "receiver.conf"
    config.write_text(
        section("SERVICE", {"flush": 0.2, "grace": 2, "log_level": "info"})
        + section("INPUT", forward_in)
        + section("OUTPUT", {**file_out, "format": "plain"})
    )
    receiver = procs.agent(config, name="receiver")
    receiver.wait_started()
    return receiver, port


def received_lines(tmp_path: Path) -> list[dict[str, Any]]:
    """The records the receiving relaybit wrote (``format plain``: one JSON record a line)."""
    path = tmp_path / "received" / "lines"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append({"record": json.loads(line)})
        except ValueError:
            continue  # a line being written
    return rows


def test_plain_node_to_tls_relaybit_delivers_nothing_until_fixed_then_everything(
    procs: Processes, tmp_path: Path, certs: dict[str, Path]
) -> None:
    receiver, port = tls_relaybit(procs, tmp_path, certs)
    plain_node = {"name": "tls-node", "host": "127.0.0.1", "port": port}
    upstream = tmp_path / "upstream.conf"
    upstream.write_text(upstream_conf([plain_node]))
    writer = LineWriter(tmp_path / "app.log")
    writer.write(200)
    api = free_port()
    config = tmp_path / "agent.conf"
    output = forward_output(require_ack_response="off")
    config.write_text(agent_conf([tail_input(writer.path)], output, service=monitoring(api)))
    agent = procs.agent(config)
    agent.wait_started()

    def retried() -> bool:
        metrics = http_json(api, "/api/v1/metrics")["output"]["forward.0"]
        return bool(metrics["retries"] >= 3)

    write_until(writer, retried, what="three retries of the plain node", timeout=30)
    metrics = http_json(api, "/api/v1/metrics")["output"]["forward.0"]
    assert metrics["proc_records"] == 0, metrics
    assert received_lines(tmp_path) == []
    node_errors = [
        line
        for line in agent.log().splitlines()
        if "tls-node" in line
        and ("warn" in line or "error" in line)
        and "retry" not in line
        and "records can be dropped" not in line  # the start-up note on acks off
    ]
    assert len(node_errors) == 1, agent.log()
    assert "is tls on for this node?" in node_errors[0], node_errors
    receiver_errors = receiver.log_lines("TLS handshake failed", "is the client using TLS?")
    assert receiver_errors, receiver.log()
    assert "Traceback" not in receiver.log() and "exception" not in receiver.log().lower()

    fixed = {**plain_node, "tls": "on", "tls.ca_file": certs["ca"]}
    upstream.write_text(upstream_conf([fixed]))
    agent.signal(signal.SIGHUP)
    wait_until(lambda: agent.log_lines("reloaded"), what="the upstream reload")
    writer.write(300)
    wait_until(
        lambda: not tally(received_lines(tmp_path), writer.written).missing,
        timeout=40,
        what="every line, including those written before the fix, at the receiver",
    )
    assert agent.terminate() == 0
    assert receiver.terminate() == 0
    result = tally(received_lines(tmp_path), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert "Traceback" not in receiver.log(), receiver.log()
