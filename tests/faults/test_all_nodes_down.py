"""Every receiver down, then one comes back: the chunks are kept, retried and delivered."""

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
    write_until,
)


def test_all_receivers_down_then_one_returns(procs: Processes, tmp_path: Path) -> None:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(r) for r in receivers], base_ejection_time=1, max_ejection_time=2)
    )
    for rec in receivers:
        rec.kill9()
    writer = LineWriter(tmp_path / "app.log")
    writer.write(300)
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail_input(writer.path)], forward_output()))
    agent = procs.agent(config)
    agent.wait_started()

    # Nothing can be delivered: the chunks go back to the engine and are retried.
    write_until(writer, lambda: len(agent.log_lines("retry in")) >= 3, what="three retries")
    assert received(receivers) == []
    assert agent.log_lines("panic mode")
    # Not one line per failed flush: at most one per node state change.
    failures = agent.log_lines("not delivered")
    assert 1 <= len(failures) <= len(agent.log_lines("upstream up: node ")) + 1, failures
    assert not agent.log_lines("dropped")

    receivers[1].start()  # node-2 returns on its port
    writer.write(300)
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        timeout=30,
        what="every line through node-2",
    )
    assert agent.terminate() == 0
    result = tally(received(receivers), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert agent.log_lines("succeeded at retry")
    assert not agent.log_lines("dropped")
