"""What a server input needs against abuse: connection counters and logs that do not flood.

:class:`ConnectionStats` counts one input's connections: open now, accepted,
refused over the connection ceiling, closed by the server for a reason
(``malformed``, ``too_large``, ``auth``, ``timeout``, ``tls`` ...).  Its
:meth:`ConnectionStats.metrics` is merged into the input's entry of
``/api/v1/metrics`` and rendered for Prometheus
(``relaybit_input_connections``, ``relaybit_input_connections_refused_total``,
``relaybit_input_rejected_total{reason}``).

:class:`SummarisedLog` writes the first few lines per reason, then counts the
rest and writes one summary line per interval ("12 more requests rejected
for timeout in the last 10 s"), however fast they come: a client cannot fill
the disk through the log.  Any input can use both; they know no protocol.

The connection ceiling: :meth:`ConnectionStats.admit` counts a new
connection open, or refuses it over ``max_connections`` (the caller closes
it) with one line per burst through a :func:`refusal_log`; existing
connections are not touched.  :func:`raise_nofile_limit` lifts the process's
soft descriptor limit to the hard one (the ``relaybit`` command calls it
before it starts the agent), so an aggregator can hold the ceiling's worth of
sockets.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

#: Reasons a server input closes a connection or rejects a request (metrics labels).
REASONS = ("malformed", "too_large", "auth", "timeout", "tls")

#: The default connection ceiling of a server input (``max_connections``).
DEFAULT_MAX_CONNECTIONS = 10_000


class ConnectionStats:
    """One input's connection counters (plain ints: cheap on every connection)."""

    __slots__ = ("accepted", "max_connections", "open", "refused", "rejected")

    def __init__(self, max_connections: int = 0) -> None:
        self.max_connections = max_connections  #: 0: no ceiling
        self.open = 0  #: connections open now
        self.accepted = 0  #: connections accepted since start
        self.refused = 0  #: connections refused over ``max_connections``
        self.rejected: Counter[str] = Counter({r: 0 for r in REASONS})

    def full(self) -> bool:
        """True when a new connection would pass the ceiling."""
        return 0 < self.max_connections <= self.open

    def opened(self) -> None:
        self.open += 1
        self.accepted += 1

    def closed(self) -> None:
        self.open = max(0, self.open - 1)

    def reject(self, reason: str, count: int = 1) -> None:
        """Count ``count`` connections closed, or records refused, for ``reason``."""
        self.rejected[reason] += count

    def admit(self, refusals: SummarisedLog, key: str = "max_connections") -> bool:
        """Count a new connection open (True), or refused over the ceiling (False).

        A refusal is logged through ``refusals`` (a :func:`refusal_log`: one line
        per burst, then a summary per interval) naming ``key``, the option that
        sets the ceiling; the caller closes the refused connection.
        """
        if self.full():
            self.refused += 1
            refusals.log(
                "max_connections",
                "%s: refusing new connections: %d open, the most %s allows"
                " (existing clients are served)",
                refusals.name,
                self.open,
                key,
            )
            return False
        self.opened()
        return True

    def metrics(self) -> dict[str, Any]:
        """``connections``, ``connections_total``, ``connections_refused``, ``rejected``."""
        return {
            "connections": self.open,
            "connections_total": self.accepted,
            "connections_refused": self.refused,
            "rejected": dict(self.rejected),
        }

    def __repr__(self) -> str:
        limit = self.max_connections or "unlimited"
        return f"<ConnectionStats open={self.open}/{limit} refused={self.refused}>"


def refusal_log(logger: logging.Logger, name: str) -> SummarisedLog:
    """The log of refused connections: one line per burst, then one per interval."""
    return SummarisedLog(logger, name, what="connections refused", first=1)


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the (soft, hard) now in force.

    Each open connection holds a descriptor; a common soft limit of 1024 would
    refuse clients long before ``max_connections``.  Failure leaves the limit as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, hard
        soft = target
    return soft, hard


class SummarisedLog:
    """The first ``first`` lines per reason, then one summary line per ``interval``.

    ``log(reason, message)`` writes ``message`` while fewer than ``first`` lines
    of that reason were written in the current interval; later ones are counted,
    and when the interval ends one line says how many were left out:
    ``"<name>: 12 more <what> for <reason> in the last 10 s"`` (no ``<name>: `` when
    ``name`` is empty: a plugin's logger names the instance already).  The summary is
    written by a timer on the running loop (or by the next call without one).
    """

    def __init__(
        self,
        logger: logging.Logger,
        name: str,
        *,
        what: str = "connections closed",
        first: int = 5,
        interval: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.name = name
        self.what = what
        self.first = first
        self.interval = interval
        self.level = level
        self.clock = clock
        self._window_start: dict[str, float] = {}
        self._written: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def log(self, reason: str, message: str, *args: Any, level: int | None = None) -> bool:
        """Write ``message % args`` unless over the budget; True when it was written."""
        now = self.clock()
        start = self._window_start.get(reason)
        if start is None or now - start >= self.interval:
            self._summarise(reason)
            self._window_start[reason] = now
            self._written[reason] = 0
        if self._written[reason] < self.first:
            self._written[reason] += 1
            self.logger.log(self.level if level is None else level, message, *args)
            return True
        self._suppressed[reason] += 1
        self._arm()
        return False

    def flush(self) -> None:
        """Write the summary line of every reason whose interval is over."""
        now = self.clock()
        for reason in list(self._suppressed):
            if now - self._window_start.get(reason, now) >= self.interval:
                self._summarise(reason)
        if self._suppressed:
            self._arm()

    def close(self) -> None:
        """Write every pending summary now and cancel the timer (at stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for reason in list(self._suppressed):
            self._summarise(reason)

    def _summarise(self, reason: str) -> None:
        count = self._suppressed.pop(reason, 0)
        if count:
            self.logger.log(
                self.level,
                "%s%d more %s for %s in the last %g s",
                f"{self.name}: " if self.name else "",
                count,
                self.what,
                reason,
                self.interval,
            )

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next log() call writes the summary
        self._timer = loop.call_later(self.interval / 2, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def __repr__(self) -> str:
        return f"<SummarisedLog {self.name} suppressed={dict(self._suppressed)}>"
