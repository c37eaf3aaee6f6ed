"""relaybit.monitoring.history: rates per second and the timeline of state changes (pure)."""

from __future__ import annotations

from typing import Any

from relaybit.monitoring.history import History


def metrics(records: int, out: int) -> dict[str, Any]:
    return {
        "input": {"dummy.0": {"records": records, "bytes": records * 10}},
        "output": {"forward.0": {"proc_records": out, "proc_bytes": out * 10}},
    }


def upstreams(node_records: dict[str, int], states: dict[str, str]) -> dict[str, Any]:
    return {
        "forward.0": {
            "name": "tier",
            "nodes": [
                {"name": n, "state": states[n], "counters": {"records": r}}
                for n, r in node_records.items()
            ],
        }
    }


def test_rates_per_second_line_up_with_the_times() -> None:
    h = History(seconds=3)
    h.sample(100.0, metrics(0, 0), upstreams({"a": 0, "b": 0}, {"a": "healthy", "b": "healthy"}))
    h.sample(
        101.0, metrics(50, 40), upstreams({"a": 20, "b": 20}, {"a": "healthy", "b": "healthy"})
    )
    h.sample(
        103.0, metrics(150, 140), upstreams({"a": 120, "b": 20}, {"a": "healthy", "b": "healthy"})
    )
    doc = h.to_json()
    assert doc["times"] == [100.0, 101.0, 103.0]
    assert doc["inputs"]["dummy.0"]["records_per_sec"] == [None, 50.0, 50.0]
    assert doc["inputs"]["dummy.0"]["bytes_per_sec"] == [None, 500.0, 500.0]
    assert doc["outputs"]["forward.0"]["records_per_sec"] == [None, 40.0, 50.0]
    assert doc["nodes"]["forward.0"] == {"a": [None, 20.0, 50.0], "b": [None, 20.0, 0.0]}
    # the ring keeps `seconds` samples; a reset counter (a reload) reads as 0, not negative
    h.sample(104.0, metrics(10, 10), upstreams({"a": 0, "b": 0}, {"a": "healthy", "b": "healthy"}))
    doc = h.to_json()
    assert doc["times"] == [101.0, 103.0, 104.0]
    assert doc["inputs"]["dummy.0"]["records_per_sec"] == [50.0, 50.0, 0.0]


def test_a_node_that_appears_later_is_padded_and_a_gone_one_dropped() -> None:
    h = History(seconds=10)
    h.sample(1.0, metrics(0, 0), upstreams({"a": 0}, {"a": "healthy"}))
    h.sample(2.0, metrics(0, 0), upstreams({"a": 5, "b": 0}, {"a": "healthy", "b": "healthy"}))
    h.sample(3.0, metrics(0, 0), upstreams({"b": 7}, {"b": "healthy"}))
    nodes = h.to_json()["nodes"]["forward.0"]
    assert nodes == {"b": [None, None, 7.0]}


def test_state_changes_come_from_the_listener_once() -> None:
    h = History()
    h.sample(1.0, metrics(0, 0), upstreams({"a": 0}, {"a": "healthy"}))
    h.state_changed(
        at=1.5,
        output="forward.0",
        upstream="tier",
        node="a",
        old="healthy",
        new="ejected",
        reason="connect: refused",
    )
    # the next sample sees the same state: no second entry
    h.sample(2.0, metrics(0, 0), upstreams({"a": 0}, {"a": "ejected"}))
    # a change no listener reported is noted by the sample
    h.sample(3.0, metrics(0, 0), upstreams({"a": 0}, {"a": "probing"}))
    events = h.to_json()["events"]
    assert [(e["old"], e["new"]) for e in events] == [
        ("healthy", "ejected"),
        ("ejected", "probing"),
    ]
    assert events[0]["reason"] == "connect: refused" and events[0]["at"] == 1.5
    assert "History samples=3" in repr(h)


def test_the_timeline_is_bounded() -> None:
    h = History(max_events=3)
    for i in range(5):
        h.state_changed(at=i, output="o", upstream="u", node="n", old=str(i), new=str(i + 1))
    assert [e["new"] for e in h.to_json()["events"]] == ["3", "4", "5"]
