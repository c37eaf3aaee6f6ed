"""With its defaults, relaybit loses nothing when every node of an upstream dies a while.

The issue's run (tail -> forward, every node killed for 15 s, 60,000 lines)
scaled down: 12,000 lines, both nodes killed while a third of them is still to
be read, for as long as the agent takes to retry every chunk in flight at
least twice (Fluent Bit's default ``retry_limit 1`` would have dropped them)
and at least 3 s.  The output keeps relaybit's defaults: no ``retry_limit``,
no ``require_ack_response``.  (``scheduler.base``/``cap`` are short here, as
in every fault test, only to keep it fast.)
"""

from __future__ import annotations

import time
from pathlib import Path

from support import (
    LineWriter,
    Processes,
    agent_conf,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
    write_until,
)

LINES = 12_000


def test_every_node_down_a_while_loses_nothing_with_the_defaults(
    procs: Processes, tmp_path: Path
) -> None:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2)]
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(r) for r in receivers], base_ejection_time=1, max_ejection_time=2)
    )
    writer = LineWriter(tmp_path / "app.log")
    writer.write(LINES // 3)
    output = {"name": "forward", "match": "*", "upstream": "upstream.conf"}  # the defaults
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail_input(writer.path)], output))
    agent = procs.agent(config)
    agent.wait_started()
    assert not agent.log_lines("records can be dropped")  # the defaults lose nothing
    wait_until(lambda: len(received(receivers)) >= LINES // 6, what="the first deliveries")

    for rec in receivers:  # the whole aggregator tier restarts
        rec.kill9()
    down = time.monotonic()
    writer.write(LINES // 3)
    write_until(  # keep writing while the agent retries (the steady stream)
        writer,
        lambda: len(agent.log_lines("(retry 2)")) >= 2 and time.monotonic() - down >= 3,
        step=200,
        timeout=30,
        what="chunks retried twice with every node down",
    )
    assert not agent.log_lines("dropped")
    for rec in receivers:
        rec.start()
    writer.write(LINES - writer.written)
    wait_until(
        lambda: tally(received(receivers), writer.written).complete,
        timeout=40,
        what="every line once the nodes are back",
    )
    assert agent.terminate() == 0
    result = tally(received(receivers), writer.written)
    assert (result.missing, result.extra) == ([], []), result
    assert not agent.log_lines("dropped")
    assert agent.log_lines("succeeded at retry")
