"""Prometheus rendering, redaction and the health window (pure code)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from relaybit.monitoring.metrics import (
    HealthRules,
    HealthTracker,
    build_info,
    redact,
    render_prometheus,
    upstreams_status,
    uptime_info,
)


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_prometheus_has_fluent_bit_names_and_node_metrics(agent: Any) -> None:
    agent.counters["output"]["forward.0"]["retries_failed"] = 4
    agent.counters["output"]["forward.0"]["retried_records"] = 7
    got = samples(render_prometheus(agent, uptime=12.0))
    assert got[("fluentbit_input_records_total", frozenset({("name", "dummy.0")}))] == 10
    assert got[("fluentbit_input_bytes_total", frozenset({("name", "dummy.0")}))] == 300
    fwd = frozenset({("name", "forward.0")})
    assert got[("fluentbit_output_proc_records_total", fwd)] == 10
    assert got[("fluentbit_output_retries_failed_total", fwd)] == 4
    assert got[("fluentbit_output_retried_records_total", fwd)] == 7
    assert got[("fluentbit_output_dropped_records_total", fwd)] == 0
    assert got[("fluentbit_uptime", frozenset())] == 12
    node1 = {("output", "forward.0"), ("upstream", "forward-balancing"), ("node", "node-1")}
    node3 = {("output", "forward.0"), ("upstream", "forward-balancing"), ("node", "node-3")}
    assert got[("relaybit_upstream_node_state", frozenset({*node1, ("state", "healthy")}))] == 1
    assert got[("relaybit_upstream_node_state", frozenset({*node1, ("state", "ejected")}))] == 0
    assert got[("relaybit_upstream_node_state", frozenset({*node3, ("state", "ejected")}))] == 1
    assert got[("relaybit_upstream_node_in_flight", frozenset(node1))] == 2
    assert got[("relaybit_upstream_node_flushes_total", frozenset(node1))] == 7
    assert got[("relaybit_upstream_node_failovers_total", frozenset(node1))] == 3
    assert got[("relaybit_upstream_node_ejections_total", frozenset(node1))] == 1
    assert (
        got[("relaybit_upstream_node_failures_total", frozenset({*node1, ("kind", "ack_timeout")}))]
        == 2
    )
    assert got[("relaybit_upstream_node_failures_total", frozenset({*node3, ("kind", "tls")}))] == 4
    lat = "relaybit_upstream_node_latency_seconds"
    assert got[(f"{lat}_bucket", frozenset({*node1, ("le", "0.01")}))] == 5
    assert got[(f"{lat}_bucket", frozenset({*node1, ("le", "+Inf")}))] == 7
    assert got[(f"{lat}_sum", frozenset(node1))] == 0.25
    # the stdout output has no upstream: no node metric names it
    assert not any(("output", "stdout.0") in labels for _, labels in got)


def test_non_cumulative_latency_buckets_are_summed(agent: Any) -> None:
    node = agent.outputs["forward.0"]._status["nodes"][0]
    node["latency"] = {"buckets": {"0.1": 3, "0.01": 2}, "sum": 1.0, "cumulative": False}
    got = samples(render_prometheus(agent))
    labels = {("output", "forward.0"), ("upstream", "forward-balancing"), ("node", "node-1")}
    name = "relaybit_upstream_node_latency_seconds_bucket"
    assert got[(name, frozenset({*labels, ("le", "0.01")}))] == 2
    assert got[(name, frozenset({*labels, ("le", "0.1")}))] == 5
    assert got[(name, frozenset({*labels, ("le", "+Inf")}))] == 5


def test_upstreams_lists_only_upstream_outputs_without_secrets(agent: Any) -> None:
    doc = upstreams_status(agent)
    assert list(doc["upstreams"]) == ["forward.0"]
    text = repr(doc)
    assert "secret" not in text and "hunter2" not in text
    node3 = doc["upstreams"]["forward.0"]["nodes"][1]
    assert node3["tls"] == {"enabled": True}
    assert node3["last_error"]["message"] == "certificate verify failed"


def test_redact_walks_lists_and_maps() -> None:
    assert redact({"a": [{"http_passwd": "x", "b": 1}], "Shared_Key": "k"}) == {"a": [{"b": 1}]}


def test_build_and_uptime_documents() -> None:
    info = build_info()["relaybit"]
    assert info["edition"] == "Community" and info["version"]
    assert "msgpack" in info["flags"]
    up = uptime_info(90061.7)
    assert up["uptime_sec"] == 90061
    assert "1 day, 1 hour, 1 minute and 1 seconds" in up["uptime_hr"]


def _out(ok: int, errors: int = 0, retries: int = 0, failed: int = 0) -> dict[str, int]:
    return {"proc_records": ok, "errors": errors, "retries": retries, "retries_failed": failed}


def test_health_unhealthy_only_when_every_active_output_failed() -> None:
    tracker = HealthTracker(HealthRules(period=10))
    assert tracker.healthy(0, {"output": {"a": _out(0), "b": _out(0)}})
    # a keeps failing, b succeeds: healthy
    assert tracker.healthy(5, {"output": {"a": _out(0, retries=3), "b": _out(100)}})
    # now both only fail within the window... b delivered 100 in the window: still healthy
    assert tracker.healthy(8, {"output": {"a": _out(0, retries=5), "b": _out(100, errors=1)}})
    # the window slides past b's successes: every active output failed only
    assert not tracker.healthy(16, {"output": {"a": _out(0, retries=9), "b": _out(100, errors=2)}})
    # recovery: a delivers again
    assert tracker.healthy(30, {"output": {"a": _out(50, retries=9), "b": _out(100, errors=2)}})


def test_health_fluent_bit_error_thresholds() -> None:
    rules = HealthRules.from_service(
        {
            "Health_Check": "On",
            "HC_Errors_Count": "2",
            "HC_Retry_Failure_Count": "1",
            "HC_Period": "5",
        }
    )
    assert rules == HealthRules(True, 2, 1, 5.0)
    tracker = HealthTracker(rules)
    assert tracker.healthy(0, {"output": {"a": _out(0)}})
    assert tracker.healthy(1, {"output": {"a": _out(10, errors=2)}})
    assert not tracker.healthy(2, {"output": {"a": _out(20, errors=3)}})
    assert not tracker.healthy(3, {"output": {"a": _out(30, errors=3, failed=2)}})
    # errors age out of the window
    assert tracker.healthy(9, {"output": {"a": _out(40, errors=3, failed=2)}})
    assert HealthRules.from_service(None) == HealthRules()


async def test_a_real_upstream_status_renders(agent: Any, tmp_path: Any) -> None:
    from relaybit.upstream.spec import load_upstream_file
    from relaybit.upstream.upstream import Upstream

    path = tmp_path / "upstream.conf"
    path.write_text(
        "[UPSTREAM]\n    name up\n[NODE]\n    name a\n    host 127.0.0.1\n    port 1\n"
        "    shared_key topsecret\n"
    )

    async def connector(node: Any, host: str, port: int) -> Any:
        raise OSError("not used")

    upstream = Upstream(load_upstream_file(path), connector, owner="forward.9")
    agent.outputs["forward.9"] = type("Out", (), {"status": lambda self: upstream.status()})()
    doc = upstreams_status(agent)["upstreams"]["forward.9"]
    assert [n["name"] for n in doc["nodes"]] == ["a"]
    assert "topsecret" not in repr(doc)
    got = samples(render_prometheus(agent))
    labels = {("output", "forward.9"), ("upstream", "up"), ("node", "a")}
    assert got[("relaybit_upstream_node_flushes_total", frozenset(labels))] == 0
    assert got[("relaybit_upstream_node_state", frozenset({*labels, ("state", "healthy")}))] == 1
    assert got[("relaybit_upstream_node_latency_seconds_count", frozenset(labels))] == 0


async def test_http_and_es_outputs_upstreams_are_listed(agent: Any, tmp_path: Any) -> None:
    """The http and es outputs nest their Upstream under ``status()["upstream"]``:
    /api/v1/upstreams and the Prometheus node metrics must show them too."""
    from relaybit.config.loader import full_configmap
    from relaybit.config.origin import Origin
    from relaybit.config.schema import RawProperty
    from relaybit.plugins.base import OutputContext
    from relaybit.plugins.outputs.es.output import ElasticsearchOutput
    from relaybit.plugins.outputs.http.output import HttpOutput

    raw = [
        RawProperty(k, v, Origin("t.conf", 1))
        for k, v in {"host": "127.0.0.1", "port": "9", "http_passwd": "hunter2"}.items()
    ]
    for name, cls in (("http.0", HttpOutput), ("es.0", ElasticsearchOutput)):
        opts = full_configmap("output", cls).resolve(raw, section=f"[OUTPUT] {name}")
        ctx = OutputContext(
            name=name, plugin=name[:-2], options=opts, config_dir=tmp_path, upstream=None
        )
        out = cls(ctx)
        await out.start()
        agent.outputs[name] = out
    try:
        doc = upstreams_status(agent)["upstreams"]
        assert {"http.0", "es.0"} <= set(doc)
        assert [n["address"] for n in doc["http.0"]["nodes"]] == ["127.0.0.1:9"]
        assert "hunter2" not in repr(doc)
        got = samples(render_prometheus(agent))
        names = {dict(labels).get("output") for name, labels in got if "upstream_node" in name}
        assert {"http.0", "es.0"} <= names
    finally:
        for name in ("http.0", "es.0"):
            await agent.outputs.pop(name).stop()


def test_encoder_workers_are_exported_only_when_the_agent_has_them(agent: Any) -> None:
    assert not any(
        name.startswith("relaybit_encoder") for name, _ in samples(render_prometheus(agent))
    )
    agent.counters["encoder"] = {
        "workers": 2,
        "ready": 1,
        "chunks": 40,
        "in_agent": 3,
        "restarts": 1,
    }
    got = samples(render_prometheus(agent))
    assert got[("relaybit_encoder_workers", frozenset({("state", "ready")}))] == 1
    assert got[("relaybit_encoder_workers", frozenset({("state", "not_ready")}))] == 1
    assert got[("relaybit_encoder_chunks_total", frozenset({("by", "worker")}))] == 40
    assert got[("relaybit_encoder_chunks_total", frozenset({("by", "agent")}))] == 3
    assert got[("relaybit_encoder_restarts_total", frozenset())] == 1
