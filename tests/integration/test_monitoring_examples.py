"""examples/monitoring: the Grafana dashboard and the Prometheus alert rules.

Every metric and every label the dashboard and the rules name must exist in
the Prometheus exposition of a running agent (a real process with an upstream
of a live receiver and a dead node, filesystem storage and limits, so every
family has samples), as must the node states they compare with. ``promtool
check rules`` must accept the rules, ``promtool test rules`` must pass their
unit tests, and every dashboard query must parse as PromQL (promtool checks it
as a recording rule, Grafana's variables replaced). promtool comes with
Debian's ``prometheus`` package (scripts/test installs it when root); the
promtool tests are skipped with the reason where it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support import Processes, agent_conf, forward_output, free_port, monitoring

from relaybit.testing import closed_port, wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "monitoring"
DASHBOARD = EXAMPLES / "grafana" / "relaybit-dashboard.json"
RULES = EXAMPLES / "prometheus" / "relaybit.rules.yml"
RULE_TESTS = EXAMPLES / "prometheus" / "relaybit.rules.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
#: labels Prometheus adds to every scraped series (target labels), not the agent
TARGET_LABELS = {"instance", "job"}
METRIC = re.compile(r"\b((?:fluentbit|relaybit)_[a-z_]+)\b")
MATCHER = re.compile(r"\b(\w+)\s*(=~|!~|!=|=)\s*\"([^\"]*)\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE_LABEL = re.compile(r"\$labels\.(\w+)")


@pytest.fixture(scope="module")
def exposition(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, dict[str, set[str]]]]:
    """sample name -> label -> values, from a running agent's /api/v1/metrics/prometheus."""
    tmp = tmp_path_factory.mktemp("exposition")
    procs = Processes(tmp)
    try:
        receiver = procs.receiver("node-1")
        (tmp / "upstream.conf").write_text(
            "[UPSTREAM]\n    name tier\n"
            f"[NODE]\n    name node-1\n    host 127.0.0.1\n    port {receiver.port}\n"
            f"[NODE]\n    name node-2\n    host 127.0.0.1\n    port {closed_port()}\n"
        )
        api = free_port()
        conf = tmp / "agent.conf"
        conf.write_text(
            agent_conf(
                [
                    {
                        "name": "dummy",
                        "tag": "app",
                        "rate": 50,
                        "storage.type": "filesystem",
                        "mem_buf_limit": "1M",
                    }
                ],
                forward_output(**{"storage.total_limit_size": "10M"}),
                service={**monitoring(api), "storage.path": str(tmp / "store")},
            )
        )
        procs.agent(conf).wait_started()

        def scrape() -> str | None:
            text = http_json_text(api)
            complete = "relaybit_upstream_node_failures_total{" in text and (
                'relaybit_upstream_node_latency_seconds_bucket{le="+Inf",node="node-1"' in text
            )
            return text if complete else None

        text = wait_until(scrape, 20, "a failure and a delivery in the exposition")
        samples: dict[str, dict[str, set[str]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = samples.setdefault(sample.name, {})
                for key, value in sample.labels.items():
                    labels.setdefault(key, set()).add(value)
        yield samples
    finally:
        procs.cleanup()


def http_json_text(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v1/metrics/prometheus", timeout=5
    ) as resp:
        return str(resp.read().decode())


def dashboard_queries() -> list[tuple[str, str, list[str]]]:
    """(where, PromQL, legend labels) of every dashboard query and variable."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found: list[tuple[str, str, list[str]]] = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            legend = LEGEND.findall(target.get("legendFormat", ""))
            found.append((f"panel {panel['title']!r}", target["expr"], legend))
    for var in board["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        if m := re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query):
            found.append((f"variable {var['name']}", m.group(1), [m.group(2)]))
    return found


def rule_queries() -> list[tuple[str, str, list[str]]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    found = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            text = " ".join(str(v) for v in rule.get("annotations", {}).values())
            found.append((f"alert {rule['alert']}", rule["expr"], TEMPLATE_LABEL.findall(text)))
    return found


QUERIES = dashboard_queries() + rule_queries()


@pytest.mark.parametrize(("where", "expr", "extra"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_metric_and_label_exists_in_a_running_agent(
    exposition: dict[str, dict[str, set[str]]], where: str, expr: str, extra: list[str]
) -> None:
    metrics = set(METRIC.findall(expr))
    assert metrics, f"{where}: no relaybit metric in {expr!r}"
    missing = sorted(m for m in metrics if m not in exposition)
    assert not missing, f"{where}: not in the exposition: {missing}"
    labels: dict[str, set[str]] = {}
    for metric in metrics:
        for key, values in exposition[metric].items():
            labels.setdefault(key, set()).update(values)
    named = {name for name, _, _ in MATCHER.findall(expr)}
    for group in GROUPING.findall(expr):
        named |= {label.strip() for label in group.split(",") if label.strip()}
    named |= set(extra)
    unknown = sorted(named - set(labels) - TARGET_LABELS)
    assert not unknown, f"{where}: labels {unknown} not on {sorted(metrics)}"
    # the values compared with exactly (node states) exist too
    for name, op, value in MATCHER.findall(expr):
        if name == "state" and op in ("=", "=~"):
            for state in value.split("|"):
                assert state in labels["state"], f"{where}: no state {state!r}"


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    text = DASHBOARD.read_text(encoding="utf-8")
    board = json.loads(text)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["__inputs"][0]["name"] == "DS_PROMETHEUS"
    for metric in (
        "fluentbit_output_proc_records_total",  # throughput per output
        "relaybit_upstream_node_records_total",  # and per node
        "relaybit_upstream_node_state",  # node states
        "relaybit_upstream_node_failovers_total",
        "relaybit_upstream_node_ejections_total",
        "fluentbit_output_retries_total",
        "fluentbit_output_dropped_records_total",
        "relaybit_storage_chunks",
    ):
        assert metric in text, metric


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules: list[dict[str, Any]] = []
    for i, (_, expr, _) in enumerate(dashboard_queries()):
        promql = (
            expr.replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$output", ".*")
        )
        rules.append({"record": f"dashboard:query_{i}", "expr": promql})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
