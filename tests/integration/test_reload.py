"""SIGHUP re-reads the upstream file: a node added takes traffic, a node removed drains; no loss."""

from __future__ import annotations

import signal
from pathlib import Path

from support import (
    LineWriter,
    Processes,
    agent_conf,
    flushes_per_node,
    forward_output,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
    write_until,
)


def test_sighup_adds_and_removes_nodes_without_losing_records(
    procs: Processes, tmp_path: Path
) -> None:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    upstream = tmp_path / "upstream.conf"
    upstream.write_text(upstream_conf([node(r) for r in receivers]))
    writer = LineWriter(tmp_path / "app.log")
    writer.write(200)
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail_input(writer.path)], forward_output()))
    agent = procs.agent(config)
    agent.wait_started()
    write_until(writer, lambda: len(received(receivers)) >= 1000, what="1000 lines")

    fourth = procs.receiver("node-4")
    receivers.append(fourth)
    upstream.write_text(upstream_conf([node(r) for r in receivers]))
    agent.signal(signal.SIGHUP)
    wait_until(lambda: agent.log_lines("reloaded"), what="the reload log line")
    write_until(
        writer, lambda: flushes_per_node(received([fourth]))["node-4"] >= 3, what="node-4 traffic"
    )
    assert agent.log_lines("added: node-4")

    # Remove node-1: it takes no new flush; the ones in flight (at most
    # `workers`, 2) finish there.
    upstream.write_text(upstream_conf([node(r) for r in receivers[1:]]))
    agent.signal(signal.SIGHUP)
    wait_until(lambda: agent.log_lines("removed: node-1"), what="node-1 to be removed")
    node1_flushes = flushes_per_node(received(receivers[:1]))["node-1"]
    write_until(writer, lambda: writer.written >= 3000, what="3000 lines written")
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        what="every line to arrive",
    )
    assert agent.terminate() == 0
    assert flushes_per_node(received(receivers[:1]))["node-1"] <= node1_flushes + 2
    result = tally(received(receivers), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert not agent.log_lines("reload failed")
