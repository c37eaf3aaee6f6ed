"""A stand-in agent with the real Agent's monitoring surface (metrics, outputs, inputs)."""

from __future__ import annotations

from typing import Any

import pytest


class StubOutput:
    """An output whose status() is whatever the test sets (an upstream status or {})."""

    def __init__(self, status: dict[str, Any]) -> None:
        self._status = status

    def status(self) -> dict[str, Any]:
        return self._status


class StubAgent:
    """Mutable counters in Fluent Bit's /api/v1/metrics shape."""

    def __init__(self) -> None:
        self.service: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {"dummy.0": object()}
        self.counters: dict[str, Any] = {
            "input": {"dummy.0": {"records": 10, "bytes": 300}},
            "output": {
                "forward.0": {
                    "proc_records": 10,
                    "proc_bytes": 300,
                    "errors": 0,
                    "retries": 0,
                    "retries_failed": 0,
                    "dropped_records": 0,
                },
                "stdout.0": {
                    "proc_records": 10,
                    "proc_bytes": 300,
                    "errors": 0,
                    "retries": 0,
                    "retries_failed": 0,
                    "dropped_records": 0,
                },
            },
        }
        self.outputs: dict[str, Any] = {
            "forward.0": StubOutput(upstream_status()),
            "stdout.0": StubOutput({}),
        }

    def metrics(self) -> dict[str, Any]:
        return self.counters


def upstream_status() -> dict[str, Any]:
    return {
        "name": "forward-balancing",
        "balance": "round_robin",
        "panic": False,
        "nodes": [
            {
                "name": "node-1",
                "address": "127.0.0.1:43000",
                "state": "healthy",
                "in_flight": 2,
                "counters": {
                    "flushes": 7,
                    "records": 700,
                    "bytes": 70000,
                    "failures": {"connect": 1, "ack_timeout": 2},
                    "failovers": 3,
                    "ejections": 1,
                },
                "latency": {
                    "buckets": [[0.01, 5], [0.1, 7]],
                    "sum": 0.25,
                    "count": 7,
                },
                "last_error": None,
            },
            {
                "name": "node-3",
                "address": "127.0.0.1:45000",
                "state": "ejected",
                "in_flight": 0,
                "counters": {"flushes": 0, "records": 0, "failures": {"tls": 4}},
                "ejected_until": 1796000030.0,
                # the shape Upstream.status() gives: kind, message, wall-clock time
                "last_error": {
                    "kind": "tls",
                    "message": "certificate verify failed",
                    "at": 1796000000.0,
                },
                "shared_key": "secret",
                "tls": {"enabled": True, "key_passwd": "hunter2"},
            },
            {
                "name": "node-4",
                "address": "127.0.0.1:46000",
                "state": "healthy",
                "standby": True,
                "in_flight": 0,
                "counters": {"flushes": 0, "records": 0, "failures": {}},
                "last_error": None,
            },
        ],
    }


@pytest.fixture
def agent() -> StubAgent:
    return StubAgent()
