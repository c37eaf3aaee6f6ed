"""Per-node health of one Upstream: passive ejection, half-open probing, active checks.

Pure code: every method takes ``now`` (monotonic seconds) and returns the
:class:`Transition` it caused, so the caller logs one line per state change.

States (:class:`NodeState`):

- ``healthy``: takes traffic.
- ``ejected``: ``max_fails`` failures within ``fail_timeout`` ejected it until
  ``ejected_until``; the ejection lasts ``base_ejection_time`` x (ejections so
  far), capped at ``max_ejection_time``.  ``max_ejection_percent`` limits how
  many nodes may be ejected at once (a value above 0 always allows one).
- ``probing``: the ejection expired (half-open).  Without active health checks
  one flush at a time may try it: success makes it ``healthy``, failure ejects it
  again, for longer.  With active health checks it takes no flush; it becomes
  ``healthy`` after ``healthy_threshold`` consecutive passing probes.
- ``unhealthy``: ``unhealthy_threshold`` consecutive probes failed (active
  checks); ``healthy_threshold`` consecutive passes make it ``healthy`` again.

After every ejection the ejection count decays by one per ``base_ejection_time``
of health without failures, so a node that misbehaved once long ago is not
punished with a long ejection.  *Standby* is a role (``Node.standby``), not a
state, and *panic* (no node available) is decided by the Upstream.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from relaybit.upstream.node import UpstreamSettings


class NodeState(enum.StrEnum):
    """The health state of a node."""

    HEALTHY = "healthy"
    EJECTED = "ejected"
    PROBING = "probing"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one node, with the reason, for one log line."""

    node: str
    old: NodeState
    new: NodeState
    reason: str
    at: float
    ejected_until: float | None = None
    ejections: int = 0

    def describe(self) -> str:
        """A short human sentence: ``ejected for 10s after 1 failure: connect: refused``."""
        if self.new is NodeState.EJECTED and self.ejected_until is not None:
            return f"ejected for {_seconds(self.ejected_until - self.at)} {self.reason}"
        return f"{self.new.value} {self.reason}" if self.reason else self.new.value


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(slots=True)
class NodeHealth:
    """The health record of one node (mutable; owned by :class:`HealthTracker`)."""

    name: str
    state: NodeState = NodeState.HEALTHY
    failures: deque[float] = field(default_factory=deque)
    ejections: int = 0
    ejected_until: float | None = None
    decay_from: float = 0.0
    permit_taken: bool = False
    probe_passes: int = 0
    probe_failures: int = 0
    last_error: tuple[str, str] | None = None

    def __repr__(self) -> str:
        until = f" until {self.ejected_until:g}" if self.ejected_until is not None else ""
        return (
            f"<NodeHealth {self.name} {self.state.value}{until} "
            f"ejections={self.ejections} failures={len(self.failures)}>"
        )


class HealthTracker:
    """Health of every node of one Upstream (pure; inject ``now``)."""

    def __init__(self, settings: UpstreamSettings, names: Iterable[str] = ()) -> None:
        self.settings = settings
        self._nodes: dict[str, NodeHealth] = {}
        for name in names:
            self.add(name)

    # -- membership -------------------------------------------------------------

    def add(self, name: str, now: float = 0.0) -> None:
        """Track a new node (healthy)."""
        if name not in self._nodes:
            self._nodes[name] = NodeHealth(name, decay_from=now)

    def remove(self, name: str) -> None:
        """Forget a node."""
        self._nodes.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __iter__(self) -> Iterator[NodeHealth]:
        return iter(self._nodes.values())

    def get(self, name: str) -> NodeHealth:
        """The record of one node (KeyError if unknown)."""
        return self._nodes[name]

    # -- queries ----------------------------------------------------------------

    def state(self, name: str) -> NodeState:
        return self._nodes[name].state

    def available(self, name: str) -> bool:
        """True if a flush may be sent to this node now (call :meth:`tick` first)."""
        h = self._nodes[name]
        if h.state is NodeState.HEALTHY:
            return True
        if h.state is NodeState.PROBING and not self.settings.health_check:
            return not h.permit_taken
        return False

    def ejected_count(self) -> int:
        """Nodes passively ejected and not yet restored (ejected or probing)."""
        return sum(1 for h in self._nodes.values() if h.state in _EJECTED_STATES)

    # -- time -------------------------------------------------------------------

    def tick(self, now: float) -> list[Transition]:
        """Apply the passage of time: expired ejections go to probing; counts decay."""
        out: list[Transition] = []
        for h in self._nodes.values():
            self._decay(h, now)
            if h.state is NodeState.EJECTED and h.ejected_until is not None:
                if now < h.ejected_until:
                    continue
                h.ejected_until = None
                h.permit_taken = False
                if self.settings.health_check and h.probe_passes >= self.settings.healthy_threshold:
                    reason = f"after {_plural(h.probe_passes, 'passing probe')}"
                    out.append(self._set(h, NodeState.HEALTHY, reason, now))
                else:
                    out.append(self._set(h, NodeState.PROBING, "after its ejection time", now))
        return out

    def _decay(self, h: NodeHealth, now: float) -> None:
        window = self.settings.fail_timeout
        while h.failures and h.failures[0] <= now - window:
            h.failures.popleft()
        base = self.settings.base_ejection_time
        if h.state is not NodeState.HEALTHY or h.ejections == 0 or base <= 0:
            return
        steps = int((now - h.decay_from) // base)
        if steps > 0:
            h.ejections = max(0, h.ejections - steps)
            h.decay_from += steps * base

    # -- flushes ----------------------------------------------------------------

    def begin(self, name: str, *, panic: bool = False) -> bool:
        """Claim the right to send one flush to ``name``; False if it may not take one.

        A probing node admits one flush at a time (the half-open permit); in panic
        every node is admitted.
        """
        h = self._nodes[name]
        if panic:
            return True
        if not self.available(name):
            return False
        if h.state is NodeState.PROBING:
            h.permit_taken = True
        return True

    def abandon(self, name: str) -> None:
        """A flush begun on ``name`` ended without a verdict (cancelled)."""
        h = self._nodes.get(name)
        if h is not None:
            h.permit_taken = False

    def record_success(self, name: str, now: float) -> Transition | None:
        """A flush to ``name`` was confirmed."""
        h = self._nodes.get(name)
        if h is None:
            return None
        h.permit_taken = False
        if h.state is NodeState.HEALTHY:
            return None
        if self.settings.health_check:
            # A confirmed flush (panic) counts as one passing probe.
            return self.record_probe(name, now, ok=True)
        h.failures.clear()
        h.ejected_until = None
        h.decay_from = now
        return self._set(h, NodeState.HEALTHY, "after a successful flush", now)

    def record_failure(self, name: str, now: float, kind: str, message: str) -> Transition | None:
        """A flush to ``name`` failed with ``kind``/``message``; may eject it."""
        h = self._nodes.get(name)
        if h is None:
            return None
        h.permit_taken = False
        h.last_error = (kind, message)
        self._decay(h, now)
        h.failures.append(now)
        h.decay_from = now
        error = f"{kind}: {message}"
        if h.state is NodeState.PROBING and not self.settings.health_check:
            return self._eject(h, now, f"after a failed probe flush: {error}")
        if h.state is NodeState.HEALTHY and len(h.failures) >= self.settings.max_fails:
            if not self._may_eject():
                return None
            n = len(h.failures)
            return self._eject(h, now, f"after {_plural(n, 'failure')}: {error}")
        return None

    def _may_eject(self) -> bool:
        pct = self.settings.max_ejection_percent
        if pct <= 0:
            return False
        ejected = self.ejected_count()
        if ejected == 0:
            return True
        return (ejected + 1) * 100 <= pct * len(self._nodes)

    def _eject(self, h: NodeHealth, now: float, reason: str) -> Transition:
        s = self.settings
        h.ejections += 1
        duration = min(s.base_ejection_time * h.ejections, s.max_ejection_time)
        h.ejected_until = now + duration
        h.failures.clear()
        h.probe_passes = 0
        return self._set(h, NodeState.EJECTED, reason, now)

    # -- active checks ------------------------------------------------------------

    def record_probe(
        self, name: str, now: float, *, ok: bool, kind: str = "", message: str = ""
    ) -> Transition | None:
        """An active health probe of ``name`` passed (``ok``) or failed."""
        h = self._nodes.get(name)
        if h is None:
            return None
        s = self.settings
        if ok:
            h.probe_passes += 1
            h.probe_failures = 0
            if (
                h.state in (NodeState.UNHEALTHY, NodeState.PROBING)
                and h.probe_passes >= s.healthy_threshold
            ):
                h.failures.clear()
                h.decay_from = now
                reason = f"after {_plural(h.probe_passes, 'passing probe')}"
                return self._set(h, NodeState.HEALTHY, reason, now)
            return None
        h.probe_failures += 1
        h.probe_passes = 0
        h.last_error = (kind, message)
        if (
            h.state in (NodeState.HEALTHY, NodeState.PROBING)
            and h.probe_failures >= s.unhealthy_threshold
        ):
            n = h.probe_failures
            reason = f"after {_plural(n, 'failed probe')}: {kind}: {message}"
            return self._set(h, NodeState.UNHEALTHY, reason, now)
        return None

    # -- helpers ------------------------------------------------------------------

    def _set(self, h: NodeHealth, new: NodeState, reason: str, now: float) -> Transition:
        old = h.state
        h.state = new
        if new is not NodeState.EJECTED:
            h.ejected_until = None
        return Transition(
            node=h.name,
            old=old,
            new=new,
            reason=reason,
            at=now,
            ejected_until=h.ejected_until,
            ejections=h.ejections,
        )

    def __repr__(self) -> str:
        states = ", ".join(f"{h.name} {h.state.value}" for h in self._nodes.values())
        return f"<HealthTracker [{states}]>"


_EJECTED_STATES = (NodeState.EJECTED, NodeState.PROBING)
