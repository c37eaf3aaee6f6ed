"""Active health checks: one task per node probing every ``health_check.interval``.

A probe opens a fresh connection through the Upstream's opener (DNS, every
address, connector: TCP, TLS, handshake ...) and then awaits the output's
``probe(node, connection)`` (forward: a heartbeat; http: GET a path).  The whole
probe is bounded by ``health_check.timeout``.  Each :class:`ProbeResult` goes to
the ``on_result`` callback, which feeds :mod:`relaybit.upstream.health`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.errors import DeliveryError, RemoteProtocolError
from relaybit.upstream.connection import Connection, Probe
from relaybit.upstream.dns import describe_error, error_kind
from relaybit.upstream.node import Node

Opener = Callable[[Node], Awaitable["Connection"]]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe of one node."""

    node: str
    ok: bool
    kind: str = ""
    message: str = ""
    duration: float = 0.0


class HealthChecker:
    """Runs probes against nodes and reports every result."""

    def __init__(
        self,
        opener: Opener,
        probe: Probe | None,
        *,
        interval: float,
        timeout: float,
        on_result: Callable[[Node, ProbeResult], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.opener = opener
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.on_result = on_result
        self.clock = clock
        self._tasks: dict[str, tuple[Node, asyncio.Task[None]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    async def check_once(self, node: Node) -> ProbeResult:
        """Probe ``node`` once: connect, then the output's probe, within the timeout."""
        started = self.clock.monotonic()
        connection: Connection | None = None
        try:
            async with asyncio.timeout(self.timeout if self.timeout > 0 else None):
                connection = await self.opener(node)
                if self.probe is not None:
                    await self.probe(node, connection)
        except TimeoutError:
            took = self.clock.monotonic() - started
            return ProbeResult(
                node.name, False, "timeout", f"probe timed out after {self.timeout:g}s", took
            )
        except (DeliveryError, OSError, RemoteProtocolError) as exc:
            took = self.clock.monotonic() - started
            return ProbeResult(
                node.name, False, error_kind(exc, "connect"), describe_error(exc), took
            )
        except Exception as exc:  # a bug or a library's ValueError: still just a failed probe
            took = self.clock.monotonic() - started
            message = f"{type(exc).__name__}: {describe_error(exc)}"[:300]
            return ProbeResult(node.name, False, "probe", message, took)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.aclose()
        return ProbeResult(node.name, True, duration=self.clock.monotonic() - started)

    async def _run(self, node: Node) -> None:
        while True:
            result = await self.check_once(node)
            self.on_result(node, result)
            await asyncio.sleep(self.interval)

    def sync(self, nodes: Iterable[Node]) -> None:
        """Probe exactly ``nodes``: start tasks for new ones, stop removed/changed ones."""
        wanted = {n.name: n for n in nodes}
        for name, (node, task) in list(self._tasks.items()):
            if wanted.get(name) != node:
                task.cancel()
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
                del self._tasks[name]
        for name, node in wanted.items():
            if name not in self._tasks:
                task = asyncio.get_running_loop().create_task(
                    self._run(node), name=f"relaybit-health-check-{name}"
                )
                self._tasks[name] = (node, task)

    async def stop(self) -> None:
        """Cancel every probe task and wait for them."""
        tasks = [t for _, t in self._tasks.values()] + list(self._stopping)
        self._tasks.clear()
        self._stopping.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        stopping = f" stopping={len(self._stopping)}" if self._stopping else ""
        return (
            f"<HealthChecker nodes={sorted(self._tasks)} interval={self.interval:g}s "
            f"timeout={self.timeout:g}s{stopping}>"
        )
