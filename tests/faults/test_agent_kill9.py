"""kill -9 of the agent mid-run with filesystem storage: every line arrives after a restart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support import (
    LineWriter,
    Processes,
    agent_conf,
    forward_output,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
)


def test_agent_kill9_with_filesystem_storage_loses_nothing(
    procs: Processes, tmp_path: Path
) -> None:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(r) for r in receivers]))
    log = tmp_path / "app.log"
    writer = LineWriter(log)
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf(
            [tail_input(log, db=tmp_path / "tail.db", **{"storage.type": "filesystem"})],
            forward_output(),
            service={"storage.path": tmp_path / "storage", "storage.sync": "normal"},
        )
    )
    writer.write(500)
    agent = procs.agent(config)
    agent.wait_started()

    # Keep writing while the agent delivers; kill it while it is busy.
    def busy() -> bool:
        writer.write(50)
        return len(received(receivers)) >= 1500

    wait_until(busy, what="1500 lines delivered")
    writer.write(200)  # lines still on their way when it dies, however fast the receivers
    agent.kill9()
    before_kill = len(received(receivers))
    assert before_kill < writer.written  # the kill came in the middle of the run

    writer.write(500)  # written while the agent is down: the tail DB offset finds them
    agent = procs.agent(config, name="agent-restarted")
    agent.wait_started()
    writer.write(500)
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        what="every line after the restart",
    )
    assert agent.terminate() == 0

    rows = received(receivers)
    result = tally(rows, writer.written)
    assert (result.missing, result.extra) == ([], [])
    # Duplicates come only from chunks that were in flight when the agent died:
    # at most `workers` (2) flushes were waiting for their ack, plus the block the
    # tail had stored but whose DB offset was not yet saved (re-read once).  Each
    # is at most one chunk, and no chunk is larger than the largest message a
    # receiver got, so 3 x that bounds them.
    largest_chunk = max(Counter((r["node"], r["msg"]) for r in rows).values())
    assert result.duplicates <= 3 * largest_chunk, (result.duplicates, largest_chunk)
