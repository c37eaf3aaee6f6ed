"""A full disk under storage.path: the input pauses, nothing is lost or duplicated.

The issue's run, scaled to stay bounded: ``storage.path`` on a 4 MB tmpfs
(mounted by the test, root only), ``tail`` (storage.type filesystem, a db) of
100,000 lines (about 8 MB of chunks: twice the disk) to a forward receiver
that is down until the disk is full.  Every line arrives exactly once after
the receiver returns, the agent never restarts, and the log has one pause
line and one resume line, not one per write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import (
    LineWriter,
    Processes,
    agent_conf,
    free_port,
    http_json,
    monitoring,
    node,
    received,
    tail_input,
    tally,
    upstream_conf,
    wait_until,
)

LINES = 100_000


def test_a_full_disk_pauses_tail_and_every_line_arrives_once(
    procs: Processes, tmp_path: Path, small_tmpfs: Callable[[int], Path]
) -> None:
    disk = small_tmpfs(4 * 1024 * 1024)
    receiver = procs.receiver("node-1")
    receiver.kill9()  # down at first: the chunks pile up on the small disk
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(receiver)], base_ejection_time=1, max_ejection_time=2)
    )
    writer = LineWriter(tmp_path / "app.log")
    writer.write(LINES)
    api = free_port()
    tail = tail_input(writer.path, db=tmp_path / "tail.db")
    tail["storage.type"] = "filesystem"
    output = {"name": "forward", "match": "*", "upstream": "upstream.conf"}  # the defaults
    config = tmp_path / "agent.conf"
    config.write_text(agent_conf([tail], output, service={**monitoring(api), "storage.path": disk}))
    agent = procs.agent(config)
    agent.wait_started()
    pid = agent.pid

    wait_until(lambda: agent.log_lines("storage full"), timeout=30, what="the disk to fill")
    storage = http_json(api, "/api/v1/storage")
    assert storage["storage_layer"]["paused"] is True, storage
    assert storage["input_chunks"]["tail.0"]["status"]["pause_reason"] == "storage write error"
    metrics = http_json(api, "/api/v1/metrics")["input"]["tail.0"]
    assert metrics["storage_paused"] == 1 and metrics["restarts"] == 0, metrics
    (line,) = agent.log_lines("storage full")
    assert str(disk) in line and "free on" in line and "No space left on device" in line

    receiver.start()  # the receiver returns: delivered chunks free the disk
    wait_until(
        lambda: tally(received([receiver]), LINES).complete,
        timeout=30,  # the target: within 30 s of the receiver's return
        what="every line after the receiver returned",
    )
    wait_until(lambda: agent.log_lines("work again"), timeout=10, what="the resume line")
    assert agent.alive and agent.pid == pid  # never restarted
    assert http_json(api, "/api/v1/storage")["storage_layer"]["paused"] is False
    assert agent.terminate() == 0
    result = tally(received([receiver]), LINES)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert len(agent.log_lines("storage full")) == 1, agent.log_lines("[storage]")
    assert len(agent.log_lines("work again")) == 1, agent.log_lines("[storage]")
    log = agent.log()
    assert "Traceback" not in log and "unexpected error" not in log and "dropped" not in log
