"""Shares through a real agent and three receiver processes: round robin, weights, standby, hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import (
    AgentProc,
    LineWriter,
    Processes,
    ReceiverProc,
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

FAST = {"flush": 0.05}


def start(
    procs: Processes,
    tmp_path: Path,
    node_keys: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    **settings: Any,
) -> tuple[list[ReceiverProc], AgentProc]:
    receivers = [procs.receiver(f"node-{i}") for i in (1, 2, 3)]
    nodes = [node(r, **keys) for r, keys in zip(receivers, node_keys, strict=True)]
    (tmp_path / "upstream.conf").write_text(upstream_conf(nodes, **settings))
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf(inputs, forward_output(), service=FAST))
    agent = procs.agent(config)
    agent.wait_started()
    return receivers, agent


def run_flushes(
    writer: LineWriter, receivers: list[ReceiverProc], agent: AgentProc, flushes: int
) -> dict[str, int]:
    """Write a steady stream until ``flushes`` flushes arrived; stop; check every line."""
    write_until(
        writer,
        lambda: sum(flushes_per_node(received(receivers)).values()) >= flushes,
        step=5,
        timeout=30,
        what=f"{flushes} flushes",
    )
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing, what="the last lines"
    )
    assert agent.terminate() == 0
    rows = received(receivers)
    result = tally(rows, writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    counts = flushes_per_node(rows)
    return {r.name: counts[r.name] for r in receivers}


def test_round_robin_gives_each_node_an_equal_share_of_flushes(
    procs: Processes, tmp_path: Path
) -> None:
    writer = LineWriter(tmp_path / "app.log")
    receivers, agent = start(procs, tmp_path, [{}, {}, {}], [tail_input(writer.path)])
    shares = run_flushes(writer, receivers, agent, 60)
    total = sum(shares.values())
    assert all(abs(n - total / 3) <= 1 for n in shares.values()), shares


def test_weights_1_2_3_give_shares_of_one_two_and_three_sixths(
    procs: Processes, tmp_path: Path
) -> None:
    writer = LineWriter(tmp_path / "app.log")
    weights = [{"weight": 1}, {"weight": 2}, {"weight": 3}]
    receivers, agent = start(
        procs, tmp_path, weights, [tail_input(writer.path)], balance="weighted"
    )
    shares = run_flushes(writer, receivers, agent, 60)
    total = sum(shares.values())
    for name, weight in zip(shares, (1, 2, 3), strict=True):
        assert abs(shares[name] / total - weight / 6) <= 0.05, shares


def test_standby_takes_nothing_while_actives_are_healthy_then_everything(
    procs: Processes, tmp_path: Path
) -> None:
    writer = LineWriter(tmp_path / "app.log")
    receivers, agent = start(
        procs, tmp_path, [{}, {}, {"standby": "on"}], [tail_input(writer.path)]
    )
    active, standby = receivers[:2], receivers[2]
    write_until(
        writer,
        lambda: sum(flushes_per_node(received(active)).values()) >= 20,
        step=5,
        what="20 flushes on the active nodes",
    )
    assert received([standby]) == []
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        what="the lines so far",
    )
    assert received([standby]) == []
    before = writer.written

    for rec in active:
        rec.kill9()
    writer.write(500)
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing,
        what="every line through the standby node",
    )
    assert agent.terminate() == 0
    after = [r for r in received([standby])]
    assert sorted({int(r["record"]["log"].split()[1]) for r in after}) == list(
        range(before + 1, writer.written + 1)
    )
    result = tally(received(receivers), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)


def test_hash_on_tag_sends_each_tag_always_to_the_same_node(
    procs: Processes, tmp_path: Path
) -> None:
    tags = [f"app.{name}" for name in ("api", "db", "web", "auth", "jobs", "cache")]
    writers = [LineWriter(tmp_path / f"{tag}.log") for tag in tags]
    inputs = [tail_input(w.path, tag=tag) for w, tag in zip(writers, tags, strict=True)]
    receivers, agent = start(procs, tmp_path, [{}, {}, {}], inputs, balance="hash", hash_key="tag")

    def all_written_arrived() -> bool:
        rows = received(receivers)
        return all(
            sum(1 for r in rows if r["tag"] == tag) >= w.written
            for tag, w in zip(tags, writers, strict=True)
        )

    for _ in range(10):  # ten rounds: each tag gets flushed about ten times
        for w in writers:
            w.write(20)
        wait_until(all_written_arrived, what="the round to arrive")
    assert agent.terminate() == 0

    rows = received(receivers)
    nodes_of = {tag: {r["node"] for r in rows if r["tag"] == tag} for tag in tags}
    assert all(len(nodes) == 1 for nodes in nodes_of.values()), nodes_of
    # The ring is built from node names, so these six tags spread over all three.
    assert set().union(*nodes_of.values()) == {"node-1", "node-2", "node-3"}, nodes_of
    flushes = {tag: len({(r["node"], r["msg"]) for r in rows if r["tag"] == tag}) for tag in tags}
    assert all(n >= 5 for n in flushes.values()), flushes
    assert len(rows) == sum(w.written for w in writers)


def test_hash_on_a_record_key_keeps_each_key_on_one_node_in_order(
    procs: Processes, tmp_path: Path
) -> None:
    writer = LineWriter(tmp_path / "app.log", users=7)
    receivers, agent = start(
        procs,
        tmp_path,
        [{}, {}, {}],
        [tail_input(writer.path, parser="json")],
        balance="hash",
        hash_key="user",
    )
    write_until(
        writer,
        lambda: sum(flushes_per_node(received(receivers)).values()) >= 60,
        step=10,
        timeout=30,
        what="60 flushes",
    )
    wait_until(
        lambda: not tally(received(receivers), writer.written).missing, what="the last lines"
    )
    assert agent.terminate() == 0
    rows = received(receivers)
    result = tally(rows, writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    users = {r["record"]["user"] for r in rows}
    assert len(users) == 7
    for user in users:
        mine = [r for r in rows if r["record"]["user"] == user]
        assert len({r["node"] for r in mine}) == 1, user
        seqs = [r["record"]["seq"] for r in mine]  # file order on that node
        assert seqs == sorted(seqs), f"{user}: records out of order on {mine[0]['node']}"
    assert len({r["node"] for r in rows}) >= 2
