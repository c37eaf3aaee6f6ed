"""What the agent did over the last minutes: rates sampled each second, state changes.

Pure code (no I/O, no asyncio): the monitoring server calls
:meth:`History.sample` once a second with the agent's counters and its
upstreams' status, and :meth:`History.state_changed` for each node state
change the Upstreams report. :meth:`History.to_json` is ``/api/v1/history``,
which the ``/status`` page draws: per-node, per-input and per-output
records/s over the last ``seconds`` seconds, and the recent state changes as
a timeline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Seconds of history kept (one sample a second).
DEFAULT_SECONDS = 300
#: State changes kept for the timeline.
DEFAULT_EVENTS = 200


def number(value: Any) -> float:
    """A counter of the monitoring API's JSON as a float: 0 when missing or not a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def failures_by_kind(counters: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, float]:
    """Failures by kind, from ``failures: {kind: n}`` or ``failures_<kind>`` or a plain count."""
    raw = counters.get("failures", node.get("failures"))
    kinds: dict[str, float] = {}
    if isinstance(raw, Mapping):
        kinds.update({str(k): number(v) for k, v in raw.items()})
    elif raw is not None:
        kinds["all"] = number(raw)
    for key, value in counters.items():
        if key.startswith("failures_"):
            kinds[key.removeprefix("failures_")] = number(value)
    return kinds


@dataclass(slots=True)
class _Series:
    """One counter's rate per sample (None for its first); the newest rate lines up
    with the newest time, and :meth:`History.to_json` pads the front of a younger series."""

    last: float | None = None
    rates: deque[float | None] = field(default_factory=deque)

    def add(self, value: float, elapsed: float | None, maxlen: int) -> None:
        if self.last is None or elapsed is None or elapsed <= 0 or value < self.last:
            rate: float | None = None if self.last is None else 0.0  # a reset: counters restart
        else:
            rate = (value - self.last) / elapsed
        self.last = value
        self.rates.append(rate)
        while len(self.rates) > maxlen:
            self.rates.popleft()


@dataclass
class History:
    """A ring of per-second rates and a timeline of state changes."""

    seconds: int = DEFAULT_SECONDS
    max_events: int = DEFAULT_EVENTS
    times: deque[float] = field(default_factory=deque)
    series: dict[tuple[str, ...], _Series] = field(default_factory=dict)
    events: deque[dict[str, Any]] = field(default_factory=deque)
    _states: dict[tuple[str, str], str] = field(default_factory=dict)

    def sample(self, now: float, metrics: Mapping[str, Any], upstreams: Mapping[str, Any]) -> None:
        """Add one sample at wall time ``now``: ``metrics`` is ``/api/v1/metrics``,
        ``upstreams`` is ``/api/v1/upstreams``'s ``upstreams`` mapping."""
        elapsed = now - self.times[-1] if self.times else None
        self.times.append(now)
        while len(self.times) > self.seconds:
            self.times.popleft()
        seen: set[tuple[str, ...]] = set()

        def add(key: tuple[str, ...], value: Any) -> None:
            seen.add(key)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = _Series()
            series.add(number(value), elapsed, self.seconds)

        for name, values in (metrics.get("input") or {}).items():
            add(("input", name, "records"), values.get("records"))
            add(("input", name, "bytes"), values.get("bytes"))
        for name, values in (metrics.get("output") or {}).items():
            add(("output", name, "records"), values.get("proc_records"))
            add(("output", name, "bytes"), values.get("proc_bytes"))
        for output, status in upstreams.items():
            for node in status.get("nodes") or []:
                name = str(node.get("name", ""))
                counters = node.get("counters") or {}
                add(("node", output, name, "records"), counters.get("records"))
                state = str(node.get("state", ""))
                # a change no listener reported (an upstream born after a reload)
                old = self._states.get((output, name))
                if old is not None and old != state:
                    self._note(now, output, str(status.get("name", "")), name, old, state, "")
                self._states[(output, name)] = state
        for key in [k for k in self.series if k not in seen]:
            del self.series[key]  # a plugin or node that is gone (reload)
        for key in [k for k in self._states if ("node", *k, "records") not in seen]:
            del self._states[key]

    def state_changed(
        self,
        *,
        at: float,
        output: str,
        upstream: str,
        node: str,
        old: str,
        new: str,
        reason: str = "",
    ) -> None:
        """A node changed state (from the Upstream's listener): add it to the timeline."""
        if self._states.get((output, node)) == new and self.events:
            last = self.events[-1]
            if last["node"] == node and last["output"] == output and last["new"] == new:
                return  # already noted by a sample
        self._states[(output, node)] = new
        self._note(at, output, upstream, node, old, new, reason)

    def _note(
        self, at: float, output: str, upstream: str, node: str, old: str, new: str, reason: str
    ) -> None:
        self.events.append(
            {
                "at": at,
                "output": output,
                "upstream": upstream,
                "node": node,
                "old": old,
                "new": new,
                "reason": reason,
            }
        )
        while len(self.events) > self.max_events:
            self.events.popleft()

    def to_json(self) -> dict[str, Any]:
        """``/api/v1/history``: times, rates per input/output/node, and the timeline."""
        inputs: dict[str, dict[str, list[float | None]]] = {}
        outputs: dict[str, dict[str, list[float | None]]] = {}
        nodes: dict[str, dict[str, list[float | None]]] = {}
        n = len(self.times)
        for key, series in self.series.items():
            kept: list[float | None] = list(series.rates)[-n:] if n else []
            padding: list[float | None] = [None] * (n - len(kept))
            rates = [None if r is None else round(r, 3) for r in padding + kept]
            if key[0] == "input":
                inputs.setdefault(key[1], {})[f"{key[2]}_per_sec"] = rates
            elif key[0] == "output":
                outputs.setdefault(key[1], {})[f"{key[2]}_per_sec"] = rates
            else:
                nodes.setdefault(key[1], {})[key[2]] = rates
        return {
            "interval_sec": 1,
            "times": [round(t, 3) for t in self.times],
            "inputs": inputs,
            "outputs": outputs,
            "nodes": nodes,
            "events": list(self.events),
        }

    def __repr__(self) -> str:
        return (
            f"<History samples={len(self.times)}/{self.seconds} series={len(self.series)}"
            f" events={len(self.events)}>"
        )
