"""The ``throttle`` filter: at most ``Rate`` records per ``Interval`` on average.

Fluent Bit's sliding window: ``Window`` panes of ``Interval`` each; a record
passes while the records passed in the window, divided by ``Window``, are
below ``Rate``; otherwise it is dropped.  The window slides one pane per
``Interval`` (relaybit slides it when records arrive, from the clock, instead
of on a timer).  Drops are never silent: they are counted (``status()``) and
logged once per window with their number.  ``Print_Status`` also logs the
current rate each interval, as Fluent Bit does.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.logging import counted
from relaybit.plugins.base import FilterPlugin, PluginContext


class SlidingWindow:
    """Counts of passed records in ``size`` panes of ``interval`` seconds. Pure."""

    def __init__(self, size: int, interval: float, now: float) -> None:
        self.size = size
        self.interval = interval
        self.panes: deque[int] = deque([0] * size, maxlen=size)
        self.total = 0
        self.pane_start = now

    def advance(self, now: float) -> int:
        """Slide to ``now``; the number of panes passed."""
        passed = int((now - self.pane_start) // self.interval)
        if passed <= 0:
            return 0
        for _ in range(min(passed, self.size)):
            self.total -= self.panes[0]
            self.panes.append(0)
        self.pane_start += passed * self.interval
        return passed

    @property
    def rate(self) -> float:
        """Records per interval, averaged over the window."""
        return self.total / self.size

    def take(self, limit: float) -> bool:
        """Count one record when the average is below ``limit``; False: drop it."""
        if self.rate >= limit:
            return False
        self.panes[-1] += 1
        self.total += 1
        return True

    def __repr__(self) -> str:
        return f"<SlidingWindow size={self.size} interval={self.interval:g} total={self.total}>"


class ThrottleFilter(FilterPlugin):
    """Drop records above an average rate (sliding window); drops counted and logged."""

    description = "Limit the rate of records (sliding window); drops are counted and logged"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option("rate", "float", 1.0, "Records allowed per interval (average)", minimum=0),
            Option("window", "int", 5, "Panes in the sliding window", minimum=1),
            Option("interval", "time", 1.0, "Length of one pane", minimum=0.001),
            Option("print_status", "bool", False, "Log the current rate each interval"),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.rate = opts.float("rate")
        self.interval = opts.float("interval")
        self.print_status = opts.bool("print_status")
        now = ctx.clock.monotonic()
        self.window = SlidingWindow(opts.int("window"), self.interval, now)
        self.passed = 0
        self.dropped = 0
        self.dropped_unlogged = 0
        self.report_at = now

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        now = self.ctx.clock.monotonic()
        if self.window.advance(now) and self.print_status:
            self.ctx.logger.info(
                "status: rate=%.2f/%gs window=%d passed=%d dropped=%d",
                self.window.rate,
                self.interval,
                self.window.size,
                self.passed,
                self.dropped,
            )
        kept = [entry for entry in entries if self.window.take(self.rate)]
        dropped = len(entries) - len(kept)
        self.passed += len(kept)
        if dropped:
            self.dropped += dropped
            self.dropped_unlogged += dropped
        if self.dropped_unlogged and now >= self.report_at:
            self._report(now)  # the first drop at once, then at most once per window
        return kept

    def _report(self, now: float) -> None:
        self.ctx.logger.warning(
            "over %g record%s per %gs (window %d): dropped %s (%d in total)",
            self.rate,
            "" if self.rate == 1 else "s",
            self.interval,
            self.window.size,
            counted(self.dropped_unlogged, "record"),
            self.dropped,
        )
        self.dropped_unlogged = 0
        self.report_at = now + self.window.size * self.interval

    def status(self) -> dict[str, Any]:
        return {"passed": self.passed, "dropped": self.dropped, "rate": self.window.rate}

    def __repr__(self) -> str:
        return (
            f"<ThrottleFilter {self.ctx.name} rate={self.rate:g}/{self.interval:g}s"
            f" window={self.window.size} dropped={self.dropped}>"
        )
