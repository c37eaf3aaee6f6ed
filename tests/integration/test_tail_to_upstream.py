"""tail -> forward -> an upstream of three receiver processes: every line, exactly once."""

from __future__ import annotations

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


def test_tail_with_rotation_and_truncation_delivers_every_line_once(
    procs: Processes, tmp_path: Path
) -> None:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(r) for r in receivers]))
    log = tmp_path / "app.log"
    writer = LineWriter(log)
    writer.write(1000)  # present at start: read from the head
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail_input(log)], forward_output()))
    agent = procs.agent(config)
    agent.wait_started()

    def arrived(n: int) -> bool:
        assert agent.alive, agent.log()
        return len(received(receivers)) >= n

    writer.write(1000)  # appended while running
    wait_until(lambda: arrived(writer.written), what="the first 2000 lines")

    writer.write(300)
    writer.rotate()  # rename: the old file is read to its end ...
    writer.write(700)  # ... and the new file at the path from its head
    wait_until(lambda: arrived(writer.written), what="the lines around the rotation")

    writer.truncate()  # everything was read: copytruncate loses nothing
    wait_until(lambda: agent.log_lines("truncated"), what="the truncation to be seen")
    writer.write(1000)
    wait_until(lambda: arrived(writer.written), what="the lines after the truncation")

    assert agent.terminate() == 0
    result = tally(received(receivers), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert writer.written == 4000
    per_node = {r.name: sum(1 for row in received([r])) for r in receivers}
    assert all(count > 0 for count in per_node.values()), per_node
