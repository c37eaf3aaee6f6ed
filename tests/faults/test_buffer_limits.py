"""mem_buf_limit pauses and resumes the input; a retry-limit drop is counted and logged."""

from __future__ import annotations

import time
from pathlib import Path

from support import (
    LineWriter,
    Processes,
    agent_conf,
    forward_output,
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


def test_mem_buf_limit_pauses_the_input_until_the_receiver_is_back(
    procs: Processes, tmp_path: Path
) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(receiver)], base_ejection_time=1, max_ejection_time=1)
    )
    receiver.kill9()
    writer = LineWriter(tmp_path / "app.log")
    api = free_port()
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf(
            [tail_input(writer.path, mem_buf_limit="64K")],
            forward_output(),
            service=monitoring(api),
        )
    )
    agent = procs.agent(config)
    agent.wait_started()
    writer.write(1000)  # about 90 KB of records: over 64K
    wait_until(lambda: agent.log_lines("tail.0 paused (mem buf overlimit)"), what="the pause")

    def input_metrics() -> dict[str, int]:
        metrics: dict[str, int] = http_json(api, "/api/v1/metrics")["input"]["tail.0"]
        return metrics

    assert input_metrics()["paused"] == 1
    writer.write(4000)
    # While paused the tail reads nothing more: watch it for a second.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert input_metrics()["records"] <= 1000
        time.sleep(0.1)

    receiver.start()
    wait_until(lambda: agent.log_lines("tail.0 resume (mem buf overlimit)"), what="the resume")
    wait_until(
        lambda: not tally(received([receiver]), writer.written).missing,
        timeout=30,
        what="every line after the resume",
    )
    assert input_metrics()["records"] == writer.written
    assert agent.terminate() == 0
    result = tally(received([receiver]), writer.written)
    assert (result.missing, result.extra, result.duplicates) == ([], [], 0)
    assert not agent.log_lines("dropped")


def test_retry_limit_drop_is_counted_and_logged_with_its_reason(
    procs: Processes, tmp_path: Path
) -> None:
    receiver = procs.receiver("node-1")
    (tmp_path / "upstream.conf").write_text(upstream_conf([node(receiver)]))
    receiver.kill9()  # never comes back
    writer = LineWriter(tmp_path / "app.log")
    writer.write(1000)
    api = free_port()
    config = tmp_path / "agent.conf"
    config.write_text(
        agent_conf(
            [tail_input(writer.path)], forward_output(retry_limit=1), service=monitoring(api)
        )
    )
    agent = procs.agent(config)
    agent.wait_started()

    def output_metrics() -> dict[str, int]:
        metrics: dict[str, int] = http_json(api, "/api/v1/metrics")["output"]["forward.0"]
        return metrics

    wait_until(
        lambda: output_metrics()["dropped_records"] == writer.written,
        timeout=30,
        what="every record dropped at the retry limit",
    )
    metrics = output_metrics()
    drops = agent.log_lines("dropped: retry limit reached (1)")
    assert metrics["retries_failed"] == len(drops) >= 1
    assert sum(int(line.split("; ")[1].split()[0]) for line in drops) == writer.written
    assert metrics["proc_records"] == 0
    assert agent.terminate() == 0
    assert agent.log_lines(f"shutdown: nothing left to deliver ({writer.written} records")
    assert not agent.log_lines("every buffered record was delivered")
