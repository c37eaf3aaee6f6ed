"""The Upstream facade: every upstream-capable output delivers through it.

- An output builds one ``Upstream`` from its ``UpstreamSpec`` (an upstream
  file, or a one-node spec made from ``host``/``port``), its ``NetSettings``, and a
  **connector**: ``async connector(node, host, port) -> Connection`` that opens a
  connection to one resolved address of the node and does everything needed
  before data can flow (TCP, TLS, Forward handshake ...).  The connector raises
  ``DeliveryError`` (kind ``connect``/``timeout``/``tls``/``handshake``/``auth``)
  on failure.  Optionally a **probe** ``async probe(node, connection)`` used by
  active health checks (forward: send a heartbeat; http: GET a path).
- ``await upstream.deliver(send, key=..., records=n, size=b)`` performs one flush:
  the balancer orders the candidate nodes; for each node a pooled connection is
  leased (or the connector opens one, trying every DNS address), and
  ``await send(node, connection)`` writes the data and waits for confirmation
  (ack / 2xx).  A ``DeliveryError`` with ``failover`` true, or an ``OSError`` or
  ``asyncio.TimeoutError`` from ``send``, closes that connection, counts the
  failure on the node (passive health) and moves on at once to the next
  candidate.  A ``PermanentDeliveryError`` is re-raised at once (no failover).
  When every candidate failed, ``NoHealthyNode`` is raised (the output returns
  ``FlushResult.RETRY``).  On success the connection goes back to the pool.
- ``start()`` starts active health checks; ``stop()`` closes every connection.
- ``status()`` returns a JSON-able dict: per node state, in-flight, counters,
  last error.  ``repr()`` is a one-line summary.

Also: ``resolver=`` (DNS, see :mod:`.dns`), ``rng=``
(least_pending tie-break), ``add_listener(callback)`` for typed
:class:`NodeStateChanged` / :class:`PanicChanged` events, ``nodes``,
``node_state(name)``, ``in_flight(name)``, ``pool(name)``; the error raised when
every node failed is :class:`AllNodesFailed`, a ``NoHealthyNode`` that lists
each node's error in ``errors``.  See ``status()`` for the monitoring shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.errors import (
    DeliveryError,
    NoHealthyNode,
    PermanentDeliveryError,
    RemoteProtocolError,
    UpstreamError,
)
from relaybit.upstream.balancer import Balancer, make_balancer
from relaybit.upstream.checker import HealthChecker, ProbeResult
from relaybit.upstream.connection import Connection, Connector, Probe, Send
from relaybit.upstream.dns import DNSCache, Resolver, connect_any, describe_error, error_kind
from relaybit.upstream.health import HealthTracker, NodeState, Transition
from relaybit.upstream.node import NetSettings, Node, UpstreamSettings, UpstreamSpec
from relaybit.upstream.pool import NodePool, PooledConnection

log = logging.getLogger("relaybit.upstream")


__all__ = [
    "AllNodesFailed",
    "Connection",
    "Connector",
    "NodeError",
    "NodeStateChanged",
    "PanicChanged",
    "Probe",
    "Send",
    "Upstream",
]

#: Upper bounds (seconds) of the latency histogram buckets; a last +Inf bucket follows.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

_FAILOVER_ERRORS = (DeliveryError, OSError, TimeoutError, RemoteProtocolError)


@dataclass(slots=True)
class LatencyHistogram:
    """Flush latency (lease to confirmation) of confirmed flushes, in seconds."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += seconds
        self.count += 1

    def as_dict(self) -> dict[str, Any]:
        """``{"buckets": {"0.005": n, ..., "+Inf": n}, "sum": s, "count": n}``, cumulative."""
        cumulative: dict[str, int] = {}
        running = 0
        for bound, n in zip((*self.buckets, None), self.counts, strict=True):
            running += n
            cumulative["+Inf" if bound is None else f"{bound:g}"] = running
        return {"buckets": cumulative, "sum": self.sum, "count": self.count}


@dataclass(slots=True)
class NodeCounters:
    """What happened on one node since the Upstream was built."""

    flushes: int = 0
    records: int = 0
    bytes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    ejections: int = 0
    probes_passed: int = 0
    probes_failed: int = 0
    stale_connections: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def as_dict(self) -> dict[str, Any]:
        return {
            "flushes": self.flushes,
            "records": self.records,
            "bytes": self.bytes,
            "failures": dict(self.failures),
            "failovers": self.failovers,
            "ejections": self.ejections,
            "probes_passed": self.probes_passed,
            "probes_failed": self.probes_failed,
            "stale_connections": self.stale_connections,
            "latency": self.latency.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """A node changed health state (one per log line); times are wall clock."""

    upstream: str
    owner: str
    node: str
    address: str
    old: str
    new: str
    reason: str
    at: float
    ejected_until: float | None = None
    ejections: int = 0


@dataclass(frozen=True, slots=True)
class PanicChanged:
    """The Upstream entered (``panic`` true) or left panic mode."""

    upstream: str
    owner: str
    panic: bool
    at: float


UpstreamEvent = NodeStateChanged | PanicChanged
Listener = Callable[[UpstreamEvent], None]


@dataclass(frozen=True, slots=True)
class NodeError:
    """Why one node did not take a flush."""

    node: str
    address: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{node_label(self.node, self.address)}: {self.kind}: {self.message}"


def node_label(name: str, address: str) -> str:
    """``node-2 (10.0.0.2:24224)`` in logs; just the address for an output's own
    host/port, whose one node is named after it (no ``127.0.0.1:24224 (127.0.0.1:24224)``)."""
    return name if name == address else f"{name} ({address})"


class AllNodesFailed(NoHealthyNode):
    """No node confirmed the flush; ``errors`` holds one :class:`NodeError` per node."""

    def __init__(self, message: str, errors: list[NodeError]) -> None:
        self.errors = errors
        super().__init__(message)


@dataclass(eq=False)
class _NodeSlot:
    node: Node
    pool: NodePool
    counters: NodeCounters = field(default_factory=NodeCounters)
    in_flight: int = 0
    draining: bool = False
    last_error: dict[str, Any] | None = None


def _same_endpoint(a: Node, b: Node) -> bool:
    """Nodes whose connections are interchangeable (weight/standby may differ)."""
    return (a.host, a.port, a.tls, a.extra) == (b.host, b.port, b.tls, b.extra)


class Upstream:
    """A set of nodes with balancing, failover, health and connection pools."""

    def __init__(
        self,
        spec: UpstreamSpec,
        connector: Connector,
        *,
        net: NetSettings | None = None,
        probe: Probe | None = None,
        clock: Clock = SYSTEM_CLOCK,
        owner: str = "",
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.connector = connector
        self.net = net or NetSettings()
        self.probe = probe
        self.clock = clock
        self.owner = owner
        self._rng = rng or random.Random()
        self._dns = DNSCache(
            resolver,
            ttl=self.net.dns_ttl,
            clock=clock,
            timeout=self.net.connect_timeout,
            prefer=self.net.dns_prefer,
        )
        self._health = HealthTracker(spec.settings)
        self._balancers = self._make_balancers(spec.settings)
        self._slots: dict[str, _NodeSlot] = {}
        self._draining: set[_NodeSlot] = set()
        self._nodes: tuple[Node, ...] = ()
        self._listeners: list[Listener] = []
        self._panic = False
        self._checker: HealthChecker | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        #: balance hash: one lock per key in flight, with how many flushes use it
        self._key_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.failovers = 0
        _check_unique(spec)
        for node in spec.nodes:
            self._add(node)
        self._nodes = tuple(spec.nodes)

    # -- properties -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def settings(self) -> UpstreamSettings:
        return self.spec.settings

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The current nodes, in file order."""
        return self._nodes

    @property
    def panic(self) -> bool:
        """True while no node can take a flush (every node is then tried)."""
        return self._refresh_panic()

    def _refresh_panic(self) -> bool:
        self._tick(self.clock.monotonic())
        panic = not any(self._health.available(n.name) for n in self._nodes)
        self._set_panic(panic)
        return panic

    def node_state(self, name: str) -> NodeState:
        """The health state of a node now."""
        self._tick(self.clock.monotonic())
        return self._health.state(name)

    def in_flight(self, name: str) -> int:
        return self._slots[name].in_flight

    def pool(self, name: str) -> NodePool:
        return self._slots[name].pool

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(event)`` on every state change (NodeStateChanged, PanicChanged)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start active health checks (when ``health_check`` is on) and pool upkeep."""
        if self.settings.health_check and self._checker is None:
            self._checker = self._make_checker()
            self._checker.sync(self._nodes)
        if self._housekeeper is None:
            self._housekeeper = asyncio.get_running_loop().create_task(
                self._housekeeping(), name=f"relaybit-upstream-{self.name}"
            )

    async def stop(self) -> None:
        """Stop health checks and close every connection (call after the last flush)."""
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None
        if self._checker is not None:
            await self._checker.stop()
            self._checker = None
        for slot in [*self._slots.values(), *self._draining]:
            await slot.pool.aclose()
        self._draining.clear()
        background = list(self._background)
        for task in background:
            with contextlib.suppress(Exception):
                await task

    def _make_checker(self) -> HealthChecker:
        s = self.settings
        return HealthChecker(
            self._open,
            self.probe,
            interval=s.health_check_interval,
            timeout=s.health_check_timeout,
            on_result=self._on_probe,
            clock=self.clock,
        )

    async def _housekeeping(self) -> None:
        period = max(0.5, min(self.net.keepalive_idle_timeout / 2, 5.0))
        while True:
            await asyncio.sleep(period)
            self._tick(self.clock.monotonic())
            for slot in list(self._slots.values()):
                await slot.pool.prune()

    # -- delivery -------------------------------------------------------------------

    async def deliver(
        self, send: Send, *, key: str | None = None, records: int = 0, size: int = 0
    ) -> Node:
        """Deliver one flush; returns the node that confirmed it.

        Tries the nodes in balancer order (standby nodes after the active ones), up
        to ``max_failover`` nodes (0 = all), moving on at once after a failure.
        Raises ``PermanentDeliveryError`` as is, and :class:`AllNodesFailed` (a
        ``NoHealthyNode``) when no node confirmed the flush.

        With ``balance hash``, flushes of one key are delivered one at a time, in
        the order they were asked for, so records of a key keep their order on
        its node even with several flushes in flight (other keys run in parallel).
        """
        if key is None or self.settings.balance != "hash":
            return await self._deliver(send, key, records, size)
        lock, users = self._key_locks.get(key) or (asyncio.Lock(), 0)
        self._key_locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._deliver(send, key, records, size)
        finally:
            lock, users = self._key_locks[key]
            if users <= 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, users - 1)

    async def _deliver(self, send: Send, key: str | None, records: int, size: int) -> Node:
        panic = self._refresh_panic()
        limit = self.settings.max_failover
        errors: list[NodeError] = []
        failed: _NodeSlot | None = None
        tried = 0
        for node in self._candidates(key, panic):
            slot = self._slots.get(node.name)
            if slot is None or slot.draining:
                continue
            if not self._health.begin(node.name, panic=panic):
                state = self._health.state(node.name).value
                errors.append(NodeError(node.name, node.address, "skipped", f"node is {state}"))
                continue
            if failed is not None:
                failed.counters.failovers += 1
                self.failovers += 1
            tried += 1
            error = await self._attempt(slot, send, records, size)
            if error is None:
                if panic:
                    self._refresh_panic()
                return slot.node
            errors.append(error)
            failed = slot
            if limit and tried >= limit:
                break
        raise self._all_failed(errors)

    def _candidates(self, key: str | None, panic: bool) -> Iterator[Node]:
        """Active nodes in balancer order, then standby nodes (computed only if reached)."""
        nodes = self._nodes
        if panic:
            eligible = {n.name for n in nodes}
        else:
            eligible = {n.name for n in nodes if self._health.available(n.name)}
        in_flight = {name: slot.in_flight for name, slot in self._slots.items()}
        active = [n for n in nodes if not n.standby]
        standby = [n for n in nodes if n.standby]
        yield from self._balancers[0].order(active, eligible, key=key, in_flight=in_flight)
        if standby:
            yield from self._balancers[1].order(standby, eligible, key=key, in_flight=in_flight)

    async def _attempt(
        self, slot: _NodeSlot, send: Send, records: int, size: int
    ) -> NodeError | None:
        node = slot.node
        slot.in_flight += 1
        started = self.clock.monotonic()
        pc: PooledConnection | None = None
        phase = "connect"
        try:
            while True:
                pc = await slot.pool.acquire()
                phase = "write"
                try:
                    await send(node, pc.connection)
                    break
                except _FAILOVER_ERRORS as exc:
                    if pc.uses <= 1 or error_kind(exc, "write") != "write":
                        raise
                    # A reused keepalive connection broke (the receiver restarted or
                    # dropped it while idle): not the node's fault.  Drop the idle
                    # ones and try once more on a fresh connection.
                    slot.counters.stale_connections += 1
                    stale, pc, phase = pc, None, "connect"
                    await slot.pool.release(stale, reuse=False)
                    await slot.pool.clear_idle()
                    log.debug(
                        "%s: node %s: stale connection, reconnecting", self._prefix(), node.name
                    )
        except PermanentDeliveryError as exc:
            if pc is not None:
                await slot.pool.release(pc, reuse=True)
            if self._is_current(slot):
                self._health.abandon(node.name)
            self._count_failure(slot, exc.kind, exc.message)
            raise
        except _FAILOVER_ERRORS as exc:
            if pc is not None:
                await slot.pool.release(pc, reuse=False)
            kind, message = error_kind(exc, phase), describe_error(exc)
            self._count_failure(slot, kind, message)
            now = self.clock.monotonic()
            if self._is_current(slot):
                self._emit(self._health.record_failure(node.name, now, kind, message))
            return NodeError(node.name, node.address, kind, message)
        except BaseException:
            if pc is not None:
                await slot.pool.release(pc, reuse=False)
            if self._is_current(slot):
                self._health.abandon(node.name)
            raise
        else:
            await slot.pool.release(pc, reuse=True)
            now = self.clock.monotonic()
            c = slot.counters
            c.flushes += 1
            c.records += records
            c.bytes += size
            c.latency.observe(max(0.0, now - started))
            if self._is_current(slot):
                self._emit(self._health.record_success(node.name, now))
            return None
        finally:
            slot.in_flight -= 1
            if slot.draining and slot.in_flight == 0:
                self._spawn(self._close_slot(slot))

    def _is_current(self, slot: _NodeSlot) -> bool:
        """False for a slot retired by reload: a node of the same name may have replaced
        it, and the outcome of the old endpoint's flush is not that node's health."""
        return self._slots.get(slot.node.name) is slot

    def _count_failure(self, slot: _NodeSlot, kind: str, message: str) -> None:
        failures = slot.counters.failures
        failures[kind] = failures.get(kind, 0) + 1
        slot.last_error = {"kind": kind, "message": message, "at": self.clock.time()}

    def _all_failed(self, errors: list[NodeError]) -> AllNodesFailed:
        total = len(self._nodes)
        if not errors:
            return AllNodesFailed(f"upstream {self.name}: no node to deliver to", errors)
        detail = "; ".join(str(e) for e in errors)
        return AllNodesFailed(
            f"upstream {self.name}: {len(errors)} of {total} nodes failed: {detail}", errors
        )

    async def _open(self, node: Node) -> Connection:
        """Open a connection to ``node``: resolve, then try every address."""
        addresses = await self._dns.resolve(node.host, node.port)
        try:
            return await connect_any(
                node, addresses, self.connector, timeout=self.net.connect_timeout
            )
        except DeliveryError:
            self._dns.forget(node.host, node.port)
            raise

    # -- health ---------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        for transition in self._health.tick(now):
            self._emit(transition)

    def _on_probe(self, node: Node, result: ProbeResult) -> None:
        slot = self._slots.get(node.name)
        if slot is None:
            return
        if result.ok:
            slot.counters.probes_passed += 1
        else:
            slot.counters.probes_failed += 1
            slot.last_error = {
                "kind": result.kind,
                "message": f"probe: {result.message}",
                "at": self.clock.time(),
            }
        now = self.clock.monotonic()
        self._tick(now)
        self._emit(
            self._health.record_probe(
                node.name, now, ok=result.ok, kind=result.kind, message=result.message
            )
        )

    def _prefix(self) -> str:
        return f"[{self.owner}] upstream {self.name}" if self.owner else f"upstream {self.name}"

    def _wall(self, monotonic: float | None) -> float | None:
        if monotonic is None:
            return None
        return self.clock.time() + (monotonic - self.clock.monotonic())

    def _emit(self, transition: Transition | None) -> None:
        if transition is None:
            return
        slot = self._slots.get(transition.node)
        if slot is None:
            return
        node = slot.node
        if transition.new is NodeState.EJECTED:
            slot.counters.ejections += 1
        level = (
            logging.WARNING
            if transition.new in (NodeState.EJECTED, NodeState.UNHEALTHY)
            else logging.INFO
        )
        log.log(
            level,
            "%s: node %s %s",
            self._prefix(),
            node_label(node.name, node.address),
            transition.describe(),
        )
        self._notify(
            NodeStateChanged(
                upstream=self.name,
                owner=self.owner,
                node=node.name,
                address=node.address,
                old=transition.old.value,
                new=transition.new.value,
                reason=transition.reason,
                at=self._wall(transition.at) or self.clock.time(),
                ejected_until=self._wall(transition.ejected_until),
                ejections=transition.ejections,
            )
        )

    def _set_panic(self, panic: bool) -> None:
        if panic == self._panic:
            return
        self._panic = panic
        if panic:
            log.warning("%s: no node is available: panic mode, trying every node", self._prefix())
        else:
            log.info("%s: a node is available again: panic mode over", self._prefix())
        self._notify(PanicChanged(self.name, self.owner, panic, self.clock.time()))

    def _notify(self, event: UpstreamEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("%s: a state listener failed", self._prefix())

    # -- reload ---------------------------------------------------------------------

    def reload(self, spec: UpstreamSpec) -> None:
        """Take a new node list: new nodes join, removed nodes drain.

        Nodes whose endpoint (host, port, tls, plugin keys) is unchanged keep their
        health and connections; a removed or re-pointed node takes no new flush,
        finishes its in-flight ones, then its pool closes.
        """
        _check_unique(spec)
        old_settings = self.spec.settings
        self.spec = spec
        self._health.settings = spec.settings
        if spec.settings.balance != old_settings.balance:
            self._balancers = self._make_balancers(spec.settings)
        wanted = {n.name: n for n in spec.nodes}
        removed: list[str] = []
        for name, slot in list(self._slots.items()):
            new = wanted.get(name)
            if new is not None and _same_endpoint(slot.node, new):
                slot.node = new
                slot.pool.node = new
                continue
            removed.append(name)
            del self._slots[name]
            self._health.remove(name)
            self._retire(slot)
        added = [n.name for n in spec.nodes if n.name not in self._slots]
        for node in spec.nodes:
            if node.name not in self._slots:
                self._add(node)
        self._nodes = tuple(spec.nodes)
        if self._checker is not None:
            self._checker.interval = spec.settings.health_check_interval
            self._checker.timeout = spec.settings.health_check_timeout
            self._checker.sync(self._nodes)
        log.info(
            "%s: reloaded: %d nodes (added: %s; removed: %s)",
            self._prefix(),
            len(self._nodes),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )

    def _make_balancers(self, settings: UpstreamSettings) -> tuple[Balancer, Balancer]:
        return (
            make_balancer(settings.balance, rng=self._rng),
            make_balancer(settings.balance, rng=self._rng),
        )

    def _add(self, node: Node) -> None:
        def opener() -> Awaitable[Connection]:
            return self._open(slot.node)

        slot = _NodeSlot(node, NodePool(node, opener, self.net, clock=self.clock))
        self._slots[node.name] = slot
        self._health.add(node.name, self.clock.monotonic())

    def _retire(self, slot: _NodeSlot) -> None:
        slot.draining = True
        self._draining.add(slot)
        if slot.in_flight == 0:
            self._spawn(self._close_slot(slot))

    async def _close_slot(self, slot: _NodeSlot) -> None:
        self._draining.discard(slot)
        await slot.pool.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return  # no loop: stop() closes draining pools
        task = loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- visibility -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot for the monitoring API.

        ``{"name", "owner", "balance", "hash_key", "max_failover", "panic",
        "failovers", "nodes": [{"name", "address", "host", "port", "tls",
        "weight", "standby", "state", "ejected_until" (epoch seconds or None),
        "ejections", "in_flight", "draining", "pool": {"active", "idle",
        "waiting", "opened", "closed"}, "last_error": {"kind", "message", "at"}
        or None, "counters": {...}}]}``; draining nodes follow the current ones.
        """
        panic = self._refresh_panic()
        slots = [self._slots[n.name] for n in self._nodes if n.name in self._slots]
        nodes = [self._node_status(slot) for slot in slots]
        nodes += [self._node_status(slot) for slot in self._draining]
        return {
            "name": self.name,
            "owner": self.owner,
            "balance": self.settings.balance,
            "hash_key": self.settings.hash_key,
            "max_failover": self.settings.max_failover,
            "panic": panic,
            "failovers": self.failovers,
            "nodes": nodes,
        }

    def _node_status(self, slot: _NodeSlot) -> dict[str, Any]:
        node = slot.node
        if slot.draining or node.name not in self._health:
            state, until, ejections = "draining", None, 0
        else:
            health = self._health.get(node.name)
            state = health.state.value
            until = self._wall(health.ejected_until)
            ejections = health.ejections
        return {
            "name": node.name,
            "address": node.address,
            "host": node.host,
            "port": node.port,
            "tls": node.tls.enabled,
            "weight": node.weight,
            "standby": node.standby,
            "state": state,
            "ejected_until": until,
            "ejections": ejections,
            "in_flight": slot.in_flight,
            "draining": slot.draining,
            "pool": slot.pool.stats(),
            "last_error": dict(slot.last_error) if slot.last_error else None,
            "counters": slot.counters.as_dict(),
        }

    def __repr__(self) -> str:
        states = ", ".join(
            f"{n.name} {self._health.state(n.name).value}"
            for n in self._nodes
            if n.name in self._health
        )
        panic = " PANIC" if self._panic else ""
        return f"<Upstream {self.name} {self.settings.balance}{panic} [{states}]>"


def _check_unique(spec: UpstreamSpec) -> None:
    seen: set[str] = set()
    for node in spec.nodes:
        if node.name in seen:
            raise UpstreamError(f"upstream {spec.name}: node name {node.name!r} is used twice")
        seen.add(node.name)
