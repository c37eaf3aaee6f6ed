"""A node without TLS against a TLS receiver, one with a wrong shared_key: one error line each."""

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


def test_misconfigured_nodes_log_once_and_the_good_node_takes_everything(
    procs: Processes, tmp_path: Path, certs: dict[str, Path]
) -> None:
    good = procs.receiver("node-1")
    tls = procs.receiver("node-2", tls=(certs["cert"], certs["key"]))
    keyed = procs.receiver("node-3", shared_key="right-key")
    nodes = [node(good), node(tls), node(keyed, shared_key="wrong-key")]
    (tmp_path / "upstream.conf").write_text(
        upstream_conf(nodes, base_ejection_time=60, max_ejection_time=60)
    )
    writer = LineWriter(tmp_path / "app.log")
    writer.write(200)
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail_input(writer.path)], forward_output()))
    agent = procs.agent(config)
    agent.wait_started()
    write_until(writer, lambda: writer.written >= 2000, what="2000 lines written")
    wait_until(
        lambda: not tally(received([good]), writer.written).missing,
        what="every line through node-1",
    )
    assert agent.terminate() == 0

    result = tally(received([good, tls, keyed]), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert received([tls, keyed]) == []
    log = agent.log()
    tls_lines = [
        line
        for line in log.splitlines()
        if "node-2" in line and ("warn" in line or "error" in line)
    ]
    key_lines = [
        line
        for line in log.splitlines()
        if "node-3" in line and ("warn" in line or "error" in line)
    ]
    assert len(tls_lines) == 1, log
    assert len(key_lines) == 1, log
    assert "tls" in tls_lines[0].lower(), tls_lines
    assert "shared_key" in key_lines[0] or "shared key" in key_lines[0], key_lines
    assert "wrong-key" not in log and "right-key" not in log
