"""The monitoring HTTP server: Fluent Bit's API, plus relaybit's upstream views.

``handle = await start(agent, host, port)`` serves, until ``await handle.close()``:

- ``/``                           build info ``{"relaybit": {"version", "edition", "flags"}}``
- ``/api/v1/uptime``              ``{"uptime_sec", "uptime_hr"}``
- ``/api/v1/metrics``             the agent's metrics, Fluent Bit's JSON shape
- ``/api/v1/metrics/prometheus``  Prometheus text (Fluent Bit names + ``relaybit_upstream_node_*``)
- ``/api/v1/health``              ``ok`` (200) or ``error`` (500), Fluent Bit's ``hc_*`` rules
- ``/api/v1/upstreams``           every upstream-backed output's status (relaybit)
- ``/api/v2/reload``              ``PUT``/``POST``: hot reload (``{"reload", "status"}``; 400 with
                                  an ``error`` when hot_reload is off or a reload runs);
                                  ``GET``: ``{"hot_reload_count": N}``
- ``/status``                     a small HTML page polling ``/api/v1/upstreams``
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

from relaybit.monitoring.metrics import (
    HealthRules,
    HealthTracker,
    MonitoredAgent,
    build_info,
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
        self.monotonic = monotonic
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
        app.router.add_get("/status", self._status_page)
        app.router.add_route("*", "/api/v2/reload", self._reload)
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
        self._sampler = asyncio.create_task(self._sample(), name="relaybit-monitoring-sampler")
        log.info("monitoring API listening on http://%s:%d", host, self.port)

    async def close(self) -> None:
        """Stop serving and release the socket."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def pipeline_replaced(self) -> None:
        """A hot reload swapped the agent's pipeline: its counters start again from
        zero, so the health window restarts (with the new ``hc_*`` rules)."""
        service = getattr(self.agent, "service", None)
        rules = HealthRules.from_service(service if isinstance(service, Mapping) else None)
        self.health = HealthTracker(rules)

    @property
    def uptime(self) -> float:
        return self.monotonic() - self.started

    async def _sample(self) -> None:
        while True:
            try:
                self.health.observe(self.monotonic(), self.agent.metrics())
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
