"""Metrics for the monitoring API: Fluent Bit's JSON, Prometheus text, health.

Pure code over what the agent reports (no sockets): the agent gives
``metrics()`` in Fluent Bit's ``/api/v1/metrics`` shape, and every
upstream-backed output gives ``status()`` with its Upstream's node list.
:func:`render_prometheus` turns both into Prometheus text with Fluent Bit's
metric names plus ``relaybit_upstream_node_*``; :class:`HealthTracker` applies
Fluent Bit's ``hc_*`` rules over a sliding window.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

import relaybit
from relaybit.monitoring.history import failures_by_kind, number

#: Health states a node can be in (Upstream status ``state``).
NODE_STATES = ("healthy", "ejected", "probing", "unhealthy", "standby", "panic")

#: Keys never shown by the API, wherever they appear in a status.
SECRET_WORDS = ("shared_key", "password", "passwd", "secret", "token", "api_key")

_INPUT_COUNTERS = (
    ("records", "fluentbit_input_records", "Number of input records."),
    ("bytes", "fluentbit_input_bytes", "Number of input bytes."),
)
_OUTPUT_COUNTERS = (
    ("proc_records", "fluentbit_output_proc_records", "Number of processed output records."),
    ("proc_bytes", "fluentbit_output_proc_bytes", "Number of processed output bytes."),
    ("errors", "fluentbit_output_errors", "Number of output errors."),
    ("retries", "fluentbit_output_retries", "Number of output retries."),
    ("retries_failed", "fluentbit_output_retries_failed", "Number of abandoned batches."),
    ("retried_records", "fluentbit_output_retried_records", "Number of retried records."),
    ("dropped_records", "fluentbit_output_dropped_records", "Number of dropped records."),
)
_NODE_COUNTERS = (
    ("flushes", "relaybit_upstream_node_flushes", "Flushes confirmed by the node."),
    ("records", "relaybit_upstream_node_records", "Records confirmed by the node."),
    ("bytes", "relaybit_upstream_node_bytes", "Bytes confirmed by the node."),
    ("failovers", "relaybit_upstream_node_failovers", "Flushes that failed over from the node."),
    ("ejections", "relaybit_upstream_node_ejections", "Times the node was ejected."),
    ("probes_passed", "relaybit_upstream_node_probes_passed", "Active health probes passed."),
    ("probes_failed", "relaybit_upstream_node_probes_failed", "Active health probes failed."),
)


class MonitoredAgent(Protocol):
    """What the monitoring code needs from the agent."""

    @property
    def outputs(self) -> Mapping[str, Any]: ...

    def metrics(self) -> dict[str, Any]: ...


def build_info() -> dict[str, Any]:
    """The ``/`` document: ``{"relaybit": {"version", "edition", "flags"}}``."""
    flags = ["msgpack", "tls"]
    for module in ("uvloop", "orjson"):
        if importlib.util.find_spec(module) is not None:
            flags.append(module)
    return {"relaybit": {"version": relaybit.__version__, "edition": "Community", "flags": flags}}


def uptime_info(seconds: float) -> dict[str, Any]:
    """The ``/api/v1/uptime`` document, as Fluent Bit words it."""
    sec = int(seconds)
    days, rest = divmod(sec, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return {
        "uptime_sec": sec,
        "uptime_hr": (
            f"relaybit has been running:  {days} day, {hours} hour, "
            f"{minutes} minute and {secs} seconds"
        ),
    }


def redact(value: Any) -> Any:
    """A copy of ``value`` without any key that names a secret."""
    if isinstance(value, Mapping):
        return {
            str(k): redact(v)
            for k, v in value.items()
            if not any(word in str(k).lower() for word in SECRET_WORDS)
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def upstreams_status(agent: MonitoredAgent) -> dict[str, Any]:
    """``/api/v1/upstreams``: every upstream-backed output's status, secrets removed.

    An output's ``status()`` is its Upstream's status (forward), or holds it
    under ``"upstream"`` (http, es).
    """
    result: dict[str, Any] = {}
    for name, output in agent.outputs.items():
        status_fn = getattr(output, "status", None)
        if status_fn is None:
            continue
        status = status_fn()
        if isinstance(status, Mapping) and not isinstance(status.get("nodes"), list):
            status = status.get("upstream")  # http, es: the Upstream beside their counters
        if isinstance(status, Mapping) and isinstance(status.get("nodes"), list):
            result[name] = redact(status)
    return {"upstreams": result}


def engine_status(agent: MonitoredAgent) -> dict[str, Any] | None:
    """The engine's buffers, queues and storage (``Engine.status()``), if the agent has one."""
    engine = getattr(agent, "engine", None)
    status_fn = getattr(engine, "status", None)
    if status_fn is None:
        return None
    status = status_fn()
    return status if isinstance(status, dict) else None


def storage_status(agent: MonitoredAgent) -> dict[str, Any]:
    """The ``/api/v1/storage`` document: Fluent Bit's ``storage_layer`` (its ``chunks``
    counts, with the engine's storage state beside them: type, chunks up and down,
    relaybit's pause when chunk writes fail on a full disk) and ``input_chunks``,
    plus a ``relaybit`` object: memory, backlog, records lost and output queues."""
    status = engine_status(agent) or {}
    storage = status.get("storage") or {"type": "memory"}
    pending = int(number(status.get("pending_chunks", 0)))
    filesystem = storage.get("type") == "filesystem"
    up = int(number(storage.get("chunks_up", 0)))
    down = int(number(storage.get("chunks_down", 0)))
    inputs: dict[str, Any] = {}
    for name, values in (status.get("inputs") or {}).items():
        limit = number(values.get("mem_buf_limit", 0))
        held = number(values.get("buffered_bytes", 0))
        inputs[name] = {
            "status": {
                "overlimit": bool(values.get("paused")),
                "paused": bool(values.get("paused")),
                "pause_reason": values.get("pause_reason", ""),
                "mem_size": int(held),
                "mem_limit": int(limit),
                "storage": values.get("storage", "memory"),
            },
            "chunks": {
                "total": int(number(values.get("pending_chunks", 0))),
                "open": int(number(values.get("open_chunks", 0))),
                "pending": int(number(values.get("pending_chunks", 0))),
            },
        }
    memory = status.get("memory") or {}
    return {
        "storage_layer": {
            **storage,
            "chunks": {
                "total_chunks": pending,
                "mem_chunks": 0 if filesystem else pending,
                "fs_chunks": pending if filesystem else 0,
                "fs_chunks_up": up,
                "fs_chunks_down": down,
            },
        },
        "input_chunks": inputs,
        "relaybit": {
            "type": storage.get("type", "memory"),
            "pending_chunks": pending,
            "chunks_up": up,
            "chunks_down": down,
            "max_chunks_up": int(number(storage.get("max_chunks_up", 0))),
            "backlog_files_waiting": int(number(storage.get("backlog_files_waiting", 0))),
            "buffered_bytes": int(number(memory.get("buffered_bytes", 0))),
            "mem_limit": int(number(memory.get("mem_limit", 0))),
            "lost_records": int(number(status.get("lost_records", 0))),
            "outputs": {
                name: {
                    key: values.get(key)
                    for key in (
                        "queued",
                        "in_flight",
                        "waiting_retry",
                        "storage_queued_chunks",
                        "storage_queued_bytes",
                        "total_limit_size",
                    )
                }
                for name, values in (status.get("outputs") or {}).items()
            },
        },
    }


def pipeline_view(agent: MonitoredAgent) -> dict[str, Any]:
    """``/api/v1/pipeline``: inputs (plugin, tag), filters and outputs (plugin, match),
    in configuration order, for the ``/status`` page's picture."""

    def describe(plugins: Mapping[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for name, plugin in plugins.items():
            ctx = getattr(plugin, "ctx", None)
            entry: dict[str, Any] = {"name": name, "plugin": getattr(ctx, "plugin", "")}
            options = getattr(ctx, "options", None)
            for key in keys:
                value = None
                if key == "tag":
                    value = getattr(ctx, "tag", None) or None
                if value is None and options is not None:
                    with contextlib.suppress(Exception):
                        value = options.opt_str(key)
                entry[key] = value
            out.append(entry)
        return out

    return {
        "inputs": describe(getattr(agent, "inputs", {}), ("tag",)),
        "filters": describe(getattr(agent, "filters", {}), ("match", "match_regex")),
        "outputs": describe(agent.outputs, ("match", "match_regex")),
    }


# --------------------------------------------------------------------------- Prometheus


def _histogram(raw: Any) -> tuple[list[tuple[str, float]], float] | None:
    """Buckets ``[(le, cumulative count)]`` ending with ``+Inf``, and the sum; None if absent.

    Accepts ``{"buckets": {le: n} | [[le, n], ...], "sum": s, "count": c,
    "cumulative": bool}`` (counts are cumulative unless ``cumulative`` is false).
    """
    if not isinstance(raw, Mapping) or "buckets" not in raw:
        return None
    buckets = raw["buckets"]
    pairs = list(buckets.items()) if isinstance(buckets, Mapping) else list(buckets)
    parsed = sorted(
        ((float("inf") if str(le) in ("+Inf", "inf") else float(le), number(n)) for le, n in pairs)
    )
    cumulative = bool(raw.get("cumulative", True))
    out: list[tuple[str, float]] = []
    running = 0.0
    for le, n in parsed:
        running = n if cumulative else running + n
        if le != float("inf"):
            out.append((repr(le), running))
    total = number(raw.get("count", running))
    out.append(("+Inf", max(total, running)))
    return out, number(raw.get("sum", 0.0))


class AgentCollector:
    """A prometheus_client collector reading the agent at scrape time."""

    def __init__(self, agent: MonitoredAgent, uptime: float | None = None) -> None:
        self.agent = agent
        self.uptime = uptime

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (called by ``generate_latest``)."""
        metrics = self.agent.metrics()
        yield from self._plugin_counters(metrics.get("input", {}), _INPUT_COUNTERS)
        yield from self._connection_metrics(metrics.get("input", {}))
        yield from self._storage_paused(metrics.get("input", {}))
        yield from self._dropped_datagrams(metrics.get("input", {}))
        yield from self._plugin_counters(metrics.get("output", {}), _OUTPUT_COUNTERS)
        if self.uptime is not None:
            up = GaugeMetricFamily("fluentbit_uptime", "Number of seconds relaybit has run.")
            up.add_metric([], self.uptime)
            yield up
        info = GaugeMetricFamily(
            "relaybit_build_info", "relaybit build information.", labels=["version", "edition"]
        )
        info.add_metric([relaybit.__version__, "Community"], 1.0)
        yield info
        yield from self._node_metrics(upstreams_status(self.agent)["upstreams"])
        yield from self._storage_metrics(engine_status(self.agent))
        yield from self._encoder_metrics(metrics.get("encoder"))

    @staticmethod
    def _encoder_metrics(status: Mapping[str, Any] | None) -> Iterator[Metric]:
        """The encoder processes of the JSON outputs (``encoder.workers``), when there are."""
        if not isinstance(status, Mapping):
            return
        workers = GaugeMetricFamily(
            "relaybit_encoder_workers",
            "Encoder worker processes, by state (ready: taking chunks).",
            labels=["state"],
        )
        ready = number(status.get("ready", 0))
        workers.add_metric(["ready"], ready)
        workers.add_metric(["not_ready"], max(number(status.get("workers", 0)) - ready, 0.0))
        yield workers
        chunks = CounterMetricFamily(
            "relaybit_encoder_chunks",
            "Chunks whose body was written by an encoder worker (by: worker), or handed back"
            " and written in the agent (by: agent).",
            labels=["by"],
        )
        chunks.add_metric(["worker"], number(status.get("chunks", 0)))
        chunks.add_metric(["agent"], number(status.get("in_agent", 0)))
        yield chunks
        restarts = CounterMetricFamily(
            "relaybit_encoder_restarts", "Encoder workers started again after they died."
        )
        restarts.add_metric([], number(status.get("restarts", 0)))
        yield restarts

    @staticmethod
    def _storage_metrics(status: Mapping[str, Any] | None) -> Iterator[Metric]:
        """Buffers, chunks and queues (Engine.status()): what 'near its limit' is measured on."""
        if status is None:
            return
        held = GaugeMetricFamily(
            "relaybit_input_buffered_bytes",
            "Bytes the input holds that are not yet delivered everywhere.",
            labels=["name"],
        )
        limit = GaugeMetricFamily(
            "relaybit_input_mem_buf_limit_bytes",
            "The input's mem_buf_limit (0: none).",
            labels=["name"],
        )
        paused = GaugeMetricFamily(
            "relaybit_input_paused",
            "1 while the input is paused (over its limit).",
            labels=["name"],
        )
        for name, values in (status.get("inputs") or {}).items():
            held.add_metric([name], number(values.get("buffered_bytes", 0)))
            limit.add_metric([name], number(values.get("mem_buf_limit", 0)))
            paused.add_metric([name], 1.0 if values.get("paused") else 0.0)
        yield held
        yield limit
        yield paused
        queued = GaugeMetricFamily(
            "relaybit_output_storage_queued_bytes",
            "Bytes of filesystem chunks queued for the output.",
            labels=["name"],
        )
        total_limit = GaugeMetricFamily(
            "relaybit_output_storage_total_limit_bytes",
            "The output's storage.total_limit_size (0: none).",
            labels=["name"],
        )
        for name, values in (status.get("outputs") or {}).items():
            queued.add_metric([name], number(values.get("storage_queued_bytes", 0)))
            total_limit.add_metric([name], number(values.get("total_limit_size", 0)))
        yield queued
        yield total_limit
        storage = status.get("storage") or {}
        memory = status.get("memory") or {}
        chunks = GaugeMetricFamily(
            "relaybit_storage_chunks",
            "Chunks not yet delivered everywhere, by state (up: data in memory, down: on disk only).",
            labels=["state"],
        )
        pending = number(status.get("pending_chunks", 0))
        if storage.get("type") == "filesystem":
            chunks.add_metric(["up"], number(storage.get("chunks_up", 0)))
            chunks.add_metric(["down"], number(storage.get("chunks_down", 0)))
        else:
            chunks.add_metric(["up"], pending)
            chunks.add_metric(["down"], 0.0)
        yield chunks
        buffered = GaugeMetricFamily(
            "relaybit_storage_buffered_bytes", "Bytes held in memory by every input together."
        )
        buffered.add_metric([], number(memory.get("buffered_bytes", 0)))
        yield buffered
        mem_limit = GaugeMetricFamily(
            "relaybit_storage_mem_limit_bytes", "[SERVICE] storage.mem_limit (0: none)."
        )
        mem_limit.add_metric([], number(memory.get("mem_limit", 0)))
        yield mem_limit
        lost = CounterMetricFamily(
            "relaybit_lost_records", "Records lost at shutdown (memory storage, grace over)."
        )
        lost.add_metric([], number(status.get("lost_records", 0)))
        yield lost

    @staticmethod
    def _plugin_counters(
        plugins: Mapping[str, Mapping[str, Any]],
        table: Iterable[tuple[str, str, str]],
    ) -> Iterator[Metric]:
        for key, name, doc in table:
            family = CounterMetricFamily(name, doc, labels=["name"])
            for instance, values in plugins.items():
                family.add_metric([instance], number(values.get(key, 0)))
            yield family

    @staticmethod
    def _dropped_datagrams(inputs: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
        """Datagrams the kernel dropped for a UDP input's socket (not read while paused)."""
        udp = {name: v for name, v in inputs.items() if "dropped_datagrams" in v}
        if not udp:
            return
        dropped = CounterMetricFamily(
            "relaybit_input_dropped_datagrams",
            "Datagrams the kernel dropped for the input's socket (its receive buffer full).",
            labels=["name"],
        )
        for name, values in udp.items():
            dropped.add_metric([name], number(values.get("dropped_datagrams", 0)))
        yield dropped

    @staticmethod
    def _storage_paused(inputs: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
        """1 while a filesystem input waits for its storage (chunk writes fail)."""
        stored = {name: v for name, v in inputs.items() if "storage_paused" in v}
        if not stored:
            return
        paused = GaugeMetricFamily(
            "relaybit_input_storage_paused",
            "1 while the input is paused because its chunk writes fail (disk full).",
            labels=["name"],
        )
        for name, values in stored.items():
            paused.add_metric([name], number(values.get("storage_paused", 0)))
        yield paused

    @staticmethod
    def _connection_metrics(inputs: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
        """Server inputs' connection counters (relaybit.net.limits.ConnectionStats)."""
        servers = {name: v for name, v in inputs.items() if "connections" in v}
        if not servers:
            return
        open_ = GaugeMetricFamily(
            "relaybit_input_connections", "Connections open on the input.", labels=["name"]
        )
        refused = CounterMetricFamily(
            "relaybit_input_connections_refused",
            "Connections refused over the input's connection ceiling.",
            labels=["name"],
        )
        rejected = CounterMetricFamily(
            "relaybit_input_rejected",
            "Requests or connections the input rejected, by reason.",
            labels=["name", "reason"],
        )
        for name, values in servers.items():
            open_.add_metric([name], number(values.get("connections", 0)))
            refused.add_metric([name], number(values.get("connections_refused", 0)))
            reasons = values.get("rejected") or {}
            if isinstance(reasons, Mapping):
                for reason, count in sorted(reasons.items()):
                    rejected.add_metric([name, str(reason)], number(count))
        yield open_
        yield refused
        yield rejected

    @staticmethod
    def _node_metrics(upstreams: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
        labels = ["output", "upstream", "node"]
        state = GaugeMetricFamily(
            "relaybit_upstream_node_state",
            "1 for the node's current state, 0 for the others.",
            labels=[*labels, "state"],
        )
        in_flight = GaugeMetricFamily(
            "relaybit_upstream_node_in_flight", "Flushes in flight on the node.", labels=labels
        )
        counters = {
            key: CounterMetricFamily(name, doc, labels=labels) for key, name, doc in _NODE_COUNTERS
        }
        failures = CounterMetricFamily(
            "relaybit_upstream_node_failures",
            "Failed flushes on the node, by kind.",
            labels=[*labels, "kind"],
        )
        latency = HistogramMetricFamily(
            "relaybit_upstream_node_latency_seconds",
            "Time from sending a flush to its confirmation.",
            labels=labels,
        )
        for output, status in upstreams.items():
            upstream = str(status.get("name", ""))
            for node in status.get("nodes", []):
                values = [output, upstream, str(node.get("name", ""))]
                current = str(node.get("state", ""))
                for name in dict.fromkeys((*NODE_STATES, current)):
                    if name:
                        state.add_metric([*values, name], 1.0 if name == current else 0.0)
                in_flight.add_metric(values, number(node.get("in_flight", 0)))
                node_counters = node.get("counters") or {}
                for key, family in counters.items():
                    family.add_metric(values, number(node_counters.get(key, node.get(key, 0))))
                for kind, count in sorted(failures_by_kind(node_counters, node).items()):
                    failures.add_metric([*values, kind], count)
                hist = _histogram(node.get("latency", node_counters.get("latency")))
                if hist is not None:
                    latency.add_metric(values, buckets=hist[0], sum_value=hist[1])
        yield state
        yield in_flight
        yield from counters.values()
        yield failures
        yield latency

    def __repr__(self) -> str:
        return f"<AgentCollector {self.agent!r}>"


def render_prometheus(agent: MonitoredAgent, uptime: float | None = None) -> bytes:
    """Prometheus text exposition (format 0.0.4) of the agent's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent, uptime))
    return generate_latest(registry)


# --------------------------------------------------------------------------- health


@dataclass(frozen=True, slots=True)
class HealthRules:
    """Fluent Bit's ``health_check``/``hc_*`` service keys.

    With ``fluent_bit_rules`` (``health_check on``): unhealthy when, within
    ``period`` seconds, output errors exceed ``errors_count`` or abandoned
    retries exceed ``retry_failure_count``.  Always: unhealthy when every
    output that tried to flush in the window failed every time.
    """

    fluent_bit_rules: bool = False
    errors_count: int = 5
    retry_failure_count: int = 5
    period: float = 60.0

    @classmethod
    def from_service(cls, service: Mapping[str, Any] | None) -> HealthRules:
        """Read ``health_check``, ``hc_errors_count``, ``hc_retry_failure_count``, ``hc_period``."""
        if not service:
            return cls()
        get = {str(k).lower(): v for k, v in service.items()}.get
        on = str(get("health_check", "off")).lower() in ("on", "true", "yes", "1")
        return cls(
            fluent_bit_rules=on,
            errors_count=int(get("hc_errors_count", 5)),
            retry_failure_count=int(get("hc_retry_failure_count", 5)),
            period=float(get("hc_period", 60)),
        )


_Snapshot = dict[str, tuple[float, float, float, float]]  # name -> ok, errors, retries, failed


def _snapshot(metrics: Mapping[str, Any]) -> _Snapshot:
    outputs: Mapping[str, Mapping[str, Any]] = metrics.get("output", {})
    return {
        name: (
            number(v.get("proc_records", 0)),
            number(v.get("errors", 0)),
            number(v.get("retries", 0)),
            number(v.get("retries_failed", 0)),
        )
        for name, v in outputs.items()
    }


@dataclass
class HealthTracker:
    """Samples output counters over time and judges health over the window."""

    rules: HealthRules = field(default_factory=HealthRules)
    samples: deque[tuple[float, _Snapshot]] = field(default_factory=deque)

    def observe(self, now: float, metrics: Mapping[str, Any]) -> None:
        """Record the counters at ``now`` (monotonic seconds)."""
        self.samples.append((now, _snapshot(metrics)))
        # keep one sample at or before the window start as the baseline
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.rules.period:
            self.samples.popleft()

    def healthy(self, now: float, metrics: Mapping[str, Any]) -> bool:
        """Observe ``metrics`` and say whether the agent is healthy."""
        self.observe(now, metrics)
        base = self.samples[0][1]
        current = self.samples[-1][1]
        errors = failed = 0.0
        active = all_failed = 0
        for name, (ok, err, retries, abandoned) in current.items():
            ok0, err0, retries0, abandoned0 = base.get(name, (0.0, 0.0, 0.0, 0.0))
            d_ok, d_err = ok - ok0, err - err0
            d_fail = (retries - retries0) + d_err
            errors += d_err
            failed += abandoned - abandoned0
            if d_ok > 0 or d_fail > 0:
                active += 1
                if d_ok == 0:
                    all_failed += 1
        if active and all_failed == active:
            return False
        if self.rules.fluent_bit_rules:
            return errors <= self.rules.errors_count and failed <= self.rules.retry_failure_count
        return True

    def __repr__(self) -> str:
        return f"<HealthTracker samples={len(self.samples)} rules={self.rules}>"
