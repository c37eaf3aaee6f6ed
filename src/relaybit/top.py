"""``relaybit top``: a live terminal view of a running agent, over its monitoring API.

    relaybit top [--url http://127.0.0.1:2020] [--interval 1] [--once]

Each second it reads ``/api/v1/metrics``, ``/api/v1/upstreams`` and
``/api/v1/storage`` and shows inputs and outputs with records/s and bytes/s,
each upstream's nodes with their state (coloured), records/s, flushes in
flight, failures, ejections and last error, and the storage (chunks up and
down, backlog). Rates are computed here, between two readings. ``q`` (or
Ctrl-C) quits. ``--once`` prints one view (rates over one interval) and exits,
for scripts.

It needs only the standard library and rich; an agent without the monitoring
API (``-H`` or ``[SERVICE] http_server on``) gets a message saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from relaybit.monitoring.history import failures_by_kind, number

DEFAULT_URL = "http://127.0.0.1:2020"

#: Colour of each node state (the /status page uses the same meaning).
STATE_STYLES = {
    "healthy": "bold green",
    "ejected": "bold red",
    "unhealthy": "bold red",
    "probing": "bold yellow",
    "standby": "bold blue",
    "draining": "dim",
    "panic": "bold white on red",
}

HINT = (
    "Is the agent running with its monitoring API? Start it with -H (-P PORT), "
    "or set http_server on (http_listen, http_port) in [SERVICE]."
)


class Unreachable(Exception):
    """The monitoring API did not answer (the message says why, for a person)."""


def fetch(base: str, path: str, timeout: float = 2.0) -> Any:
    """GET ``base + path`` and decode its JSON; :class:`Unreachable` with a reason."""
    url = base.rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise Unreachable(
                f"{url} answered 404: this is not a relaybit monitoring API "
                "(or an older one without this endpoint)"
            ) from None
        raise Unreachable(f"{url} answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise Unreachable(f"no monitoring API at {base}: {text}. {HINT}") from None
    except (TimeoutError, OSError) as exc:
        raise Unreachable(f"no monitoring API at {base}: {exc}. {HINT}") from None
    except ValueError:
        raise Unreachable(f"{url} did not answer JSON: is this a relaybit agent?") from None


@dataclass
class Reading:
    """One reading of the API, at monotonic time ``at``."""

    at: float
    metrics: Mapping[str, Any]
    upstreams: Mapping[str, Any]
    storage: Mapping[str, Any] | None
    uptime: float | None = None


def read(base: str) -> Reading:
    """Read every endpoint the view needs (storage is optional: Fluent Bit lacks it)."""
    metrics = fetch(base, "/api/v1/metrics")
    try:
        upstreams = fetch(base, "/api/v1/upstreams").get("upstreams", {})
    except Unreachable:
        upstreams = {}
    storage: Mapping[str, Any] | None
    try:
        storage = fetch(base, "/api/v1/storage")
    except Unreachable:
        storage = None
    uptime = None
    with contextlib.suppress(Unreachable, AttributeError):
        uptime = float(fetch(base, "/api/v1/uptime").get("uptime_sec", 0))
    return Reading(time.monotonic(), metrics, upstreams, storage, uptime)


def _rate(now: float, before: float | None, elapsed: float) -> float | None:
    if before is None or elapsed <= 0 or now < before:
        return None
    return (now - before) / elapsed


def human(value: float | None, unit: str = "") -> str:
    """12.3k, 4.5M ... ('-' for no value yet)."""
    if value is None:
        return "-"
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.1f}{suffix}{unit}"
    return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"


def _failures(node: Mapping[str, Any]) -> int:
    return int(sum(failures_by_kind(node.get("counters") or {}, node).values()))


def _last_error(node: Mapping[str, Any]) -> str:
    err = node.get("last_error")
    if not err:
        return ""
    if isinstance(err, Mapping):
        return str(err.get("message") or err.get("kind") or "")
    return str(err)


@dataclass
class View:
    """Turns two readings into the screen; keeps the previous reading for the rates."""

    url: str
    previous: Reading | None = None
    current: Reading | None = None
    error: str | None = None
    error_since: float | None = None
    _history: dict[str, float] = field(default_factory=dict)

    def update(self, reading: Reading) -> None:
        self.previous, self.current = self.current, reading
        self.error = None
        self.error_since = None

    def failed(self, message: str) -> None:
        if self.error_since is None:
            self.error_since = time.time()
        self.error = message

    def _rates(self, *path: str) -> tuple[float | None, float]:
        """(rate, total) of a counter at ``path`` in the metrics, between the readings."""
        assert self.current is not None
        now = self._dig(self.current.metrics, path)
        if self.previous is None:
            return None, now
        before = self._dig(self.previous.metrics, path)
        return _rate(now, before, self.current.at - self.previous.at), now

    @staticmethod
    def _dig(data: Mapping[str, Any], path: Sequence[str]) -> float:
        value: Any = data
        for key in path:
            value = value.get(key, {}) if isinstance(value, Mapping) else {}
        return number(value)

    def _node_rate(self, output: str, node: str) -> float | None:
        if self.previous is None or self.current is None:
            return None

        def records(reading: Reading) -> float | None:
            status = reading.upstreams.get(output) or {}
            for n in status.get("nodes") or []:
                if n.get("name") == node:
                    return number((n.get("counters") or {}).get("records"))
            return None

        now, before = records(self.current), records(self.previous)
        if now is None:
            return None
        return _rate(now, before, self.current.at - self.previous.at)

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self._header()]
        if self.error is not None:
            since = time.strftime("%H:%M:%S", time.localtime(self.error_since or time.time()))
            parts.append(Text(f"unreachable since {since}: {self.error}", style="bold red"))
        if self.current is not None:
            parts += [self._inputs(), self._outputs(), *self._upstreams(), self._storage()]
        parts.append(Text("q quits", style="dim"))
        return Group(*parts)

    def _header(self) -> Text:
        text = Text()
        text.append("relaybit top", style="bold")
        text.append(f"  {self.url}")
        if self.current is not None and self.current.uptime is not None:
            up = int(self.current.uptime)
            text.append(f"  up {up // 3600}h{up % 3600 // 60:02d}m{up % 60:02d}s")
        text.append("  " + time.strftime("%H:%M:%S"), style="dim")
        return text

    def _inputs(self) -> Table:
        table = Table(title="inputs", title_justify="left", expand=False)
        for col in ("input", "records/s", "bytes/s", "records", "pauses"):
            table.add_column(col, justify="left" if col == "input" else "right")
        assert self.current is not None
        for name, values in sorted((self.current.metrics.get("input") or {}).items()):
            rps, total = self._rates("input", name, "records")
            bps, _ = self._rates("input", name, "bytes")
            table.add_row(
                name, human(rps), human(bps, "B"), human(total), str(values.get("paused", "-"))
            )
        return table

    def _outputs(self) -> Table:
        table = Table(title="outputs", title_justify="left")
        for col in ("output", "records/s", "bytes/s", "records", "errors", "retries", "dropped"):
            table.add_column(col, justify="left" if col == "output" else "right")
        assert self.current is not None
        for name, values in sorted((self.current.metrics.get("output") or {}).items()):
            rps, total = self._rates("output", name, "proc_records")
            bps, _ = self._rates("output", name, "proc_bytes")
            dropped = int(number(values.get("dropped_records")))
            table.add_row(
                name,
                human(rps),
                human(bps, "B"),
                human(total),
                str(int(number(values.get("errors")))),
                str(int(number(values.get("retries")))),
                Text(str(dropped), style="bold red" if dropped else ""),
            )
        return table

    def _upstreams(self) -> Iterator[Table]:
        assert self.current is not None
        for output, status in sorted(self.current.upstreams.items()):
            title = f"{output} -> upstream {status.get('name', '')} ({status.get('balance', '')})"
            if status.get("panic"):
                title += "  PANIC"
            table = Table(title=title, title_justify="left")
            names = [str(n.get("name", "")) for n in status.get("nodes") or []]
            # node and state never shrink; the address and the last error give way first
            table.add_column("node", no_wrap=True, min_width=max(map(len, names), default=4))
            table.add_column("address", overflow="ellipsis", no_wrap=True)
            table.add_column("state", no_wrap=True, min_width=9)
            for col in ("rec/s", "in flight", "failures", "ejections"):
                table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
            table.add_column("last error", overflow="ellipsis", no_wrap=True, min_width=10)
            for node in status.get("nodes") or []:
                name = str(node.get("name", ""))
                state = str(node.get("state", ""))
                label = state
                until = node.get("ejected_until")
                if state == "ejected" and isinstance(until, int | float):
                    label += f" {max(0.0, until - time.time()):.0f}s"
                if node.get("standby"):
                    label += " (standby)"
                table.add_row(
                    name,
                    str(node.get("address", "")),
                    Text(label, style=STATE_STYLES.get(state, "")),
                    human(self._node_rate(output, name)),
                    str(int(number(node.get("in_flight")))),
                    str(_failures(node)),
                    str(int(number(node.get("ejections")))),
                    _last_error(node),
                )
            yield table

    def _storage(self) -> RenderableType:
        assert self.current is not None
        storage = self.current.storage
        if storage is None:
            return Text("storage: not reported by this agent", style="dim")
        info = storage.get("relaybit") or {}
        table = Table(title="storage", title_justify="left")
        for col in ("type", "chunks", "up", "down", "backlog files", "buffered", "lost"):
            table.add_column(col, justify="left" if col == "type" else "right")
        limit = int(number(info.get("mem_limit")))
        buffered = human(number(info.get("buffered_bytes")), "B")
        if limit:
            buffered += f" / {human(limit, 'B')}"
        table.add_row(
            str(info.get("type", "memory")),
            str(int(number(info.get("pending_chunks")))),
            str(int(number(info.get("chunks_up")))),
            str(int(number(info.get("chunks_down")))),
            str(int(number(info.get("backlog_files_waiting")))),
            buffered,
            str(int(number(info.get("lost_records")))),
        )
        return table


@contextlib.contextmanager
def _keys() -> Iterator[int | None]:
    """stdin in cbreak mode (keys without Enter) when it is a terminal; its fd or None."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_quit(fd: int | None, seconds: float) -> bool:
    """Wait up to ``seconds``; True when ``q`` was pressed."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if fd is None:
            time.sleep(left)
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            key = os.read(fd, 32)
            if b"q" in key.lower():
                return True


def run(
    url: str, interval: float = 1.0, *, once: bool = False, console: Console | None = None
) -> int:
    """The live view until ``q``; 1 when the API cannot be reached at the start."""
    console = console or Console()
    view = View(url)
    try:
        view.update(read(url))
    except Unreachable as exc:
        console.print(f"relaybit top: {exc}", style="bold red", highlight=False)
        return 1
    if once:
        time.sleep(interval)
        with contextlib.suppress(Unreachable):
            view.update(read(url))
        console.print(view.render())
        return 0
    with (
        _keys() as fd,
        Live(view.render(), console=console, screen=True, auto_refresh=False) as live,
    ):
        try:
            while not _wait_for_quit(fd, interval):
                try:
                    view.update(read(url))
                except Unreachable as exc:
                    view.failed(str(exc))
                live.update(view.render(), refresh=True)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Sequence[str]) -> int:
    """``relaybit top [--url URL] [--interval S] [--once]``."""
    parser = argparse.ArgumentParser(
        prog="relaybit top",
        description="A live view of a running agent over its monitoring API (q quits).",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the agent's monitoring API (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    parser.add_argument(
        "--once", action="store_true", help="print one view and exit (rates over one interval)"
    )
    args = parser.parse_args(list(argv))
    url = args.url if "://" in args.url else f"http://{args.url}"
    return run(url, max(args.interval, 0.1), once=args.once)
