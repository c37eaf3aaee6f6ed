"""One receiver killed (-9) or stopped (SIGSTOP) mid-run: every record arrives, duplicates bounded."""

from __future__ import annotations

import signal
from pathlib import Path

from support import (
    AgentProc,
    LineWriter,
    Processes,
    ReceiverProc,
    agent_conf,
    forward_output,
    free_port,
    largest_chunk,
    monitoring,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    upstream_nodes,
    wait_until,
    write_until,
)

UPSTREAM = {"max_fails": 1, "base_ejection_time": 1, "max_ejection_time": 2}


def start(
    procs: Processes, tmp_path: Path
) -> tuple[list[ReceiverProc], LineWriter, AgentProc, int]:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(r) for r in receivers], **UPSTREAM))
    writer = LineWriter(tmp_path / "app.log")
    api = free_port()
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf([tail_input(writer.path)], forward_output(), service=monitoring(api))
    )
    writer.write(200)
    agent = procs.agent(config)
    agent.wait_started()
    return receivers, writer, agent, api


def finish(
    receivers: list[ReceiverProc], writer: LineWriter, agent: AgentProc, api: int, victim: str
) -> tuple[int, int, int]:
    """Wait for every line; returns (duplicates, failed flushes on the victim, largest chunk)."""
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        what="every line to arrive",
    )
    failures = upstream_nodes(api)[victim]["counters"]["failures"]
    assert agent.terminate() == 0
    rows = received(receivers)
    result = tally(rows, writer.written)
    assert (result.missing, result.extra) == ([], [])
    return result.duplicates, sum(failures.values()), largest_chunk(rows)


def test_receiver_kill9_mid_run(procs: Processes, tmp_path: Path) -> None:
    receivers, writer, agent, api = start(procs, tmp_path)
    write_until(writer, lambda: len(received(receivers)) >= 1000, what="1000 lines")
    victim = receivers[1]
    victim.kill9()
    write_until(writer, lambda: writer.written >= 3000, what="3000 lines written")

    duplicates, failed, chunk = finish(receivers, writer, agent, api, victim.name)
    assert failed >= 1  # the dead node was noticed ...
    assert agent.log_lines("node-2", "ejected")  # ... and logged
    # A record is duplicated only when node-2 stored it but died before its ack
    # reached the agent: only chunks whose flush failed on node-2 are re-sent.
    assert duplicates <= failed * chunk, (duplicates, failed, chunk)


def test_receiver_sigstop_longer_than_ack_timeout(procs: Processes, tmp_path: Path) -> None:
    receivers, writer, agent, api = start(procs, tmp_path)
    write_until(writer, lambda: len(received(receivers)) >= 1000, what="1000 lines")
    victim = receivers[2]
    victim.signal(signal.SIGSTOP)
    write_until(
        writer,
        lambda: upstream_nodes(api)[victim.name]["counters"]["failures"].get("ack_timeout"),
        timeout=15,
        what="an ack timeout on the stopped node",
    )
    # Stopped for longer than ack_response_timeout (2s) and the ejection time.
    seen = len(received(receivers))
    write_until(writer, lambda: len(received(receivers)) >= seen + 1500, what="1500 more lines")
    victim.signal(signal.SIGCONT)
    writer.write(500)

    duplicates, failed, chunk = finish(receivers, writer, agent, api, victim.name)
    assert agent.log_lines("node-3", "ejected")
    # The stopped receiver reads and stores what it was sent once it runs again,
    # but those acks come too late: only chunks whose flush failed on node-3
    # (counted) can arrive twice.
    assert duplicates <= failed * chunk, (duplicates, failed, chunk)
