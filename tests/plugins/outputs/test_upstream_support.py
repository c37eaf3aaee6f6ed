"""Helpers shared by the upstream-backed outputs: record-key split, failure log."""

from __future__ import annotations

import logging

import pytest

from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.outputs.upstream_support import FailureLog, record_split_key, split_chunk
from relaybit.upstream.node import UpstreamSettings
from relaybit.upstream.upstream import AllNodesFailed, NodeError


def chunk_of(records: list[dict[str, object]]) -> Chunk:
    data = pack_entries((EventTime(1700000000 + i, 0), r) for i, r in enumerate(records))
    return Chunk(tag="app", data=data, records=len(records))


def test_record_split_key_only_for_hash_on_a_record_key() -> None:
    assert record_split_key(UpstreamSettings()) is None
    assert record_split_key(UpstreamSettings(balance="hash")) is None  # hash_key tag
    assert record_split_key(UpstreamSettings(balance="hash", hash_key="user")) == "user"
    assert record_split_key(UpstreamSettings(balance="weighted", hash_key="user")) is None


def test_split_chunk_groups_by_value_and_keeps_order_and_times() -> None:
    records = [{"user": u, "n": n} for n, u in enumerate(["a", "b", "a", None, "b", "a"])]
    chunk = chunk_of([{k: v for k, v in r.items() if v is not None} for r in records])
    whole = split_chunk(chunk, None)
    assert whole == [("app", chunk.data, 6)]
    groups = {key: (data, count) for key, data, count in split_chunk(chunk, "user")}
    assert set(groups) == {"a", "b", ""}
    assert groups["a"][1] == 3
    assert [r["n"] for _, r in iter_entries(groups["a"][0])] == [0, 2, 5]
    assert [t.seconds for t, _ in iter_entries(groups["b"][0])] == [1700000001, 1700000004]
    assert [r["n"] for _, r in iter_entries(groups[""][0])] == [3]


def failure(*pairs: tuple[str, str]) -> AllNodesFailed:
    errors = [NodeError(node, "127.0.0.1:1", kind, "boom") for node, kind in pairs]
    return AllNodesFailed("up", errors)


def test_failure_log_once_per_change_of_failing_nodes(caplog: pytest.LogCaptureFixture) -> None:
    log = FailureLog(logging.getLogger("relaybit.test"), "forward.0")
    with caplog.at_level(logging.WARNING, logger="relaybit.test"):
        log.failed("chunk 1", failure(("n1", "connect"), ("n2", "tls")))
        log.failed("chunk 2", failure(("n2", "tls"), ("n1", "connect")))  # other turn, same
        assert len(caplog.records) == 1
        log.failed("chunk 3", failure(("n1", "connect"), ("n2", "ack_timeout")))
        assert len(caplog.records) == 2
        log.delivered()
        log.failed("chunk 4", failure(("n1", "connect"), ("n2", "ack_timeout")))
        assert len(caplog.records) == 3
    assert "forward.0: chunk 1 not delivered, will retry" in caplog.records[0].getMessage()


def test_failure_log_of_a_plugin_logger_does_not_repeat_the_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the plugin logger already shows [output:forward:forward.0]
    log = FailureLog(logging.getLogger("relaybit.test"), "forward.0", named_by_logger=True)
    with caplog.at_level(logging.WARNING, logger="relaybit.test"):
        log.failed("chunk 1", failure(("n1", "connect")))
    assert caplog.records[0].getMessage().startswith("chunk 1 not delivered, will retry: ")
    assert "forward.0" in repr(log)
