"""The monitoring HTTP server: Fluent Bit's API, plus relaybit's upstream views.

``handle = await start(agent, host, port)`` serves, until ``await handle.close()``:

- ``/``                           build info ``{"relaybit": {"version", "edition", "flags"}}``
- ``/api/v1/uptime``              ``{"uptime_sec", "uptime_hr"}``
- ``/api/v1/metrics``             the agent's metrics, Fluent Bit's JSON shape
- ``/api/v1/metrics/prometheus``  Prometheus text (Fluent Bit names + ``relaybit_upstream_node_*``)
- ``/api/v1/health``              ``ok`` (200) or ``error`` (500), Fluent Bit's ``hc_*`` rules
- ``/api/v1/upstreams``           every upstream-backed output's status (relaybit)
- ``/api/v1/storage``             chunks, buffers, backlog and output queues (Fluent Bit's
                                  ``storage_layer``/``input_chunks`` plus ``relaybit``)
- ``/api/v1/pipeline``            inputs, filters and outputs with their tags and matches
- ``/api/v1/history``             records/s per input, output and node over the last
                                  minutes (sampled each second) and recent state changes
- ``/api/v2/reload``              ``PUT``/``POST``: hot reload (``{"reload", "status"}``; 400 with
                                  an ``error`` when hot_reload is off or a reload runs);
                                  ``GET``: ``{"hot_reload_count": N}``
- ``/api/v1/trace``               Fluent Bit's chunk trace: 501 with the reason (relaybit has none)
- ``/status``                     a live HTML page over those (no external script)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from relaybit.monitoring.history import History
from relaybit.monitoring.metrics import (
    HealthRules,
    HealthTracker,
    MonitoredAgent,
    build_info,
    pipeline_view,
    render_prometheus,
    storage_status,
    upstreams_status,
    uptime_info,
)
from relaybit.monitoring.status_page import STATUS_PAGE

log = logging.getLogger("relaybit.monitoring")

#: Seconds between background samples of the counters for the health window.
SAMPLE_INTERVAL = 1.0


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class MonitoringServer:
    """A running monitoring server; ``port`` is the bound port (also when 0 was asked)."""

    def __init__(
        self,
        agent: MonitoredAgent,
        *,
        rules: HealthRules,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.health = HealthTracker(rules)
        self.history = History()
        self.monotonic = monotonic
        #: upstreams whose state changes feed the history (id -> upstream)
        self._watched: dict[int, Any] = {}
        self.started = monotonic()
        self.host = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application()
        app.router.add_get("/", self._root)
        app.router.add_get("/api/v1/uptime", self._uptime)
        app.router.add_get("/api/v1/metrics", self._metrics)
        app.router.add_get("/api/v1/metrics/prometheus", self._prometheus)
        app.router.add_get("/api/v1/health", self._health)
        app.router.add_get("/api/v1/upstreams", self._upstreams)
        app.router.add_get("/api/v1/storage", self._storage)
        app.router.add_get("/api/v1/pipeline", self._pipeline)
        app.router.add_get("/api/v1/history", self._history)
        app.router.add_get("/status", self._status_page)
        app.router.add_route("*", "/api/v2/reload", self._reload)
        app.router.add_route("*", "/api/v1/trace", self._trace)
        app.router.add_route("*", "/api/v1/trace/{input}", self._trace)
        return app

    async def start(self, host: str, port: int) -> None:
        """Bind and serve; sample counters in the background for the health window."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        self.host = host
        self.port = int(addresses[0][1]) if addresses else port
        self._watch_upstreams()
        self._sampler = asyncio.create_task(self._sample(), name="relaybit-monitoring-sampler")
        log.info("monitoring API listening on http://%s:%d", host, self.port)

    async def close(self) -> None:
        """Stop serving and release the socket."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        for upstream, listener in self._watched.values():
            upstream.remove_listener(listener)
        self._watched.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def pipeline_replaced(self) -> None:
        """A hot reload swapped the agent's pipeline: its counters start again from
        zero, so the health window restarts (with the new ``hc_*`` rules)."""
        service = getattr(self.agent, "service", None)
        rules = HealthRules.from_service(service if isinstance(service, Mapping) else None)
        self.health = HealthTracker(rules)
        self._watch_upstreams()

    def _watch_upstreams(self) -> None:
        """Listen to the state changes of every output's Upstream (new ones after a reload
        or a late start too; the ones that are gone are let go)."""
        current: dict[int, Any] = {}
        for output_name, output in self.agent.outputs.items():
            upstream = getattr(output, "upstream", None)
            if upstream is None or not hasattr(upstream, "add_listener"):
                continue
            key = id(upstream)
            if key in self._watched:
                current[key] = self._watched.pop(key)
                continue
            listener = self._state_listener(output_name)
            upstream.add_listener(listener)
            current[key] = (upstream, listener)
        for upstream, listener in self._watched.values():
            upstream.remove_listener(listener)
        self._watched = current

    def _state_listener(self, output: str) -> Callable[[Any], None]:
        def listener(event: Any) -> None:
            node = getattr(event, "node", None)
            if node is None:  # PanicChanged
                return
            self.history.state_changed(
                at=float(getattr(event, "at", 0.0)) or time.time(),
                output=output,
                upstream=str(getattr(event, "upstream", "")),
                node=str(node),
                old=str(getattr(event, "old", "")),
                new=str(getattr(event, "new", "")),
                reason=str(getattr(event, "reason", "")),
            )

        return listener

    @property
    def uptime(self) -> float:
        return self.monotonic() - self.started

    async def _sample(self) -> None:
        while True:
            try:
                metrics = self.agent.metrics()
                self.health.observe(self.monotonic(), metrics)
                self._watch_upstreams()
                self.history.sample(time.time(), metrics, upstreams_status(self.agent)["upstreams"])
            except Exception:
                log.exception("monitoring: reading the agent's metrics failed")
            await asyncio.sleep(SAMPLE_INTERVAL)

    async def _root(self, request: web.Request) -> web.Response:
        return _json(build_info())

    async def _uptime(self, request: web.Request) -> web.Response:
        return _json(uptime_info(self.uptime))

    async def _metrics(self, request: web.Request) -> web.Response:
        return _json(self.agent.metrics())

    async def _prometheus(self, request: web.Request) -> web.Response:
        body = render_prometheus(self.agent, self.uptime)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _health(self, request: web.Request) -> web.Response:
        ok = self.health.healthy(self.monotonic(), self.agent.metrics())
        return web.Response(text="ok" if ok else "error", status=200 if ok else 500)

    async def _upstreams(self, request: web.Request) -> web.Response:
        return _json(upstreams_status(self.agent))

    async def _storage(self, request: web.Request) -> web.Response:
        return _json(storage_status(self.agent))

    async def _pipeline(self, request: web.Request) -> web.Response:
        return _json(pipeline_view(self.agent))

    async def _history(self, request: web.Request) -> web.Response:
        return _json(self.history.to_json())

    async def _reload(self, request: web.Request) -> web.Response:
        reloader = getattr(self.agent, "reloader", None)
        if request.method == "GET":
            return _json({"hot_reload_count": int(getattr(reloader, "count", 0))})
        if request.method not in ("PUT", "POST"):
            return _json({"error": "use PUT or POST to reload, GET for the count"}, 400)
        request_reload = getattr(self.agent, "request_reload", None)
        if request_reload is None:
            return _json({"reload": "not enabled", "status": -1, "error": "no reload here"}, 400)
        answer = request_reload("HTTP API")
        return _json(answer.body(), answer.http_status)

    async def _trace(self, request: web.Request) -> web.Response:
        """Fluent Bit's chunk trace API: refused with the reason (501), never a silent 404."""
        return _json(
            {
                "status": "error",
                "error": "chunk trace is not available in relaybit (-Z/enable_chunk_trace has"
                " no effect); to see the records a pipeline carries, add an [OUTPUT] stdout"
                " with a match",
            },
            status=501,
        )

    async def _status_page(self, request: web.Request) -> web.Response:
        return web.Response(text=STATUS_PAGE, content_type="text/html")

    def __repr__(self) -> str:
        state = "serving" if self._runner is not None else "closed"
        return f"<MonitoringServer http://{self.host}:{self.port} {state}>"


async def start(
    agent: MonitoredAgent,
    host: str = "0.0.0.0",
    port: int = 2020,
    *,
    rules: HealthRules | None = None,
) -> MonitoringServer:
    """Serve the monitoring API for ``agent`` on ``host:port`` (port 0: any free port).

    Health rules come from ``rules``, else from the agent's ``service`` mapping
    (``health_check``, ``hc_errors_count``, ``hc_retry_failure_count``, ``hc_period``).
    """
    if rules is None:
        service = getattr(agent, "service", None)
        rules = HealthRules.from_service(service if isinstance(service, Mapping) else None)
    server = MonitoringServer(agent, rules=rules)
    await server.start(host, port)
    return server
