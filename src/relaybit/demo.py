"""``relaybit --demo``: failover you can watch, with nothing external.

Starts three Forward receivers in this process on free 127.0.0.1 ports
(node-3 on TLS with a throw-away trustme certificate and a shared_key), writes
an upstream file for them, runs a dummy -> forward agent through it with
``require_ack_response on``, and shows a live table per node.  Halfway through
node-2's server goes away for a couple of seconds and comes back: the table
shows it ejected, then healthy again.  At the end (``--seconds``, default 10,
or Ctrl-C) the agent drains and a summary compares records sent and received.
Exit status 0 when none was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from relaybit.monitoring.metrics import upstreams_status
from relaybit.net.forward_server import ForwardServer

DEMO_KEY = "demo-secret"  # the demo's own throw-away shared_key
DEFAULT_SECONDS = 10.0
OUTAGE_SECONDS = 2.0
RATE = 2000  # dummy records per second

STATE_STYLE = {
    "healthy": "green",
    "ejected": "bold red",
    "probing": "yellow",
    "unhealthy": "bold red",
    "standby": "blue",
    "panic": "bold magenta",
}


@dataclass
class DemoNode:
    """One in-process receiver; ``kill``/``restore`` take it away and bring it back."""

    name: str
    tls: ssl.SSLContext | None = None
    shared_key: str | None = None
    port: int = 0
    received: int = 0
    up: bool = False
    server: ForwardServer | None = field(default=None, repr=False)

    async def _on_entries(self, tag: str, entries: bytes, records: int) -> None:
        self.received += records

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a restore)."""
        self.server = ForwardServer(
            self._on_entries,
            host="127.0.0.1",
            port=self.port,
            ssl=self.tls,
            shared_key=self.shared_key,
            udp_heartbeat=False,
            name=self.name,
        )
        await self.server.start()
        self.port = self.server.port
        self.up = True

    async def kill(self) -> None:
        """Close the listening socket and every client connection."""
        self.up = False
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def restore(self) -> None:
        await self.start()

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"<DemoNode {self.name} 127.0.0.1:{self.port} {state} received={self.received}>"


def _tls_context(workdir: Path) -> ssl.SSLContext | None:
    """A server context with a throw-away certificate, or None without trustme."""
    try:
        import trustme
    except ImportError:
        return None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def upstream_conf(nodes: Sequence[DemoNode]) -> str:
    """An upstream file like examples/upstream.conf for the demo's nodes."""
    lines = [
        "[UPSTREAM]",
        "    name                   demo-balancing",
        "    max_fails              1",
        "    base_ejection_time     1s",
        "    health_check           on",
        "    health_check.interval  0.5",
        "    health_check.timeout   0.5",
        "    healthy_threshold      1",
        "",
    ]
    for node in nodes:
        lines += [
            "[NODE]",
            f"    name       {node.name}",
            "    host       127.0.0.1",
            f"    port       {node.port}",
        ]
        if node.tls is not None:
            lines += ["    tls        on", "    tls.verify off"]
        if node.shared_key is not None:
            lines.append(f"    shared_key {node.shared_key}")
        lines.append("")
    return "\n".join(lines)


def agent_conf() -> str:
    """dummy -> forward through upstream.conf, acks on."""
    return "\n".join(
        [
            "[SERVICE]",
            "    flush        0.25",
            "    grace        5",
            "    log_level    error",
            "",
            "[INPUT]",
            "    name         dummy",
            "    tag          demo.events",
            '    dummy        {"message": "hello from relaybit", "demo": true}',
            f"    rate         {RATE}",
            "",
            "[OUTPUT]",
            "    name         forward",
            "    match        demo.*",
            "    upstream     upstream.conf",
            "    require_ack_response on",
            "    ack_response_timeout 2",
            "    retry_limit  no_limits",
            "",
        ]
    )


# --------------------------------------------------------------------------- the agent


async def _start_agent(config: Path) -> Any:
    """Build and start the agent in this event loop (errors only are logged)."""
    from relaybit.agent import Agent
    from relaybit.config.loader import load_config
    from relaybit.logging import setup_logging

    setup_logging("error")
    agent = Agent(load_config(config), log_level="error", http_server=False)
    await agent.start()
    return agent


async def _stop_agent(agent: Any) -> int:
    """Stop inputs, let the outputs flush; returns the records not delivered."""
    return int(await agent.stop())


def _sent(agent: Any) -> int:
    inputs: dict[str, Any] = agent.metrics().get("input", {})
    return sum(int(v.get("records", 0)) for v in inputs.values())


def _nodes_status(agent: Any) -> dict[str, dict[str, Any]]:
    ups = upstreams_status(agent)["upstreams"]
    for status in ups.values():
        return {str(n["name"]): n for n in status.get("nodes", [])}
    return {}


# --------------------------------------------------------------------------- display


def render(
    nodes: Sequence[DemoNode], agent: Any, elapsed: float, seconds: float, note: str
) -> Table:
    """The live table: one row per node."""
    status = _nodes_status(agent) if agent is not None else {}
    sent = _sent(agent) if agent is not None else 0
    table = Table(
        title=f"relaybit --demo  {elapsed:4.1f}s / {seconds:.0f}s   records sent {sent:,}",
        caption=note,
    )
    for col in ("node", "address", "link", "server", "state", "received", "flushes", "fails"):
        table.add_column(
            col, justify="right" if col in ("received", "flushes", "fails") else "left"
        )
    for node in nodes:
        st = status.get(node.name, {})
        counters = st.get("counters", {})
        failures = counters.get("failures", {})
        failed = sum(failures.values()) if isinstance(failures, dict) else int(failures or 0)
        state = str(st.get("state", "?"))
        transport = ("tls" if node.tls else "tcp") + ("+key" if node.shared_key else "")
        table.add_row(
            node.name,
            f"127.0.0.1:{node.port}",
            transport,
            "[green]up[/]" if node.up else "[bold red]down[/]",
            f"[{STATE_STYLE.get(state, 'white')}]{state}[/]",
            f"{node.received:,}",
            f"{counters.get('flushes', 0):,}",
            f"{failed:,}",
        )
    return table


async def run_demo(seconds: float, console: Console) -> int:
    """Run the demo for ``seconds``; returns 0 when every record sent was received."""
    with tempfile.TemporaryDirectory(prefix="relaybit-demo-") as tmp:
        workdir = Path(tmp)
        tls = _tls_context(workdir)
        if tls is None:
            console.print(
                "[yellow]trustme is not installed: node-3 runs plain TCP with shared_key only[/]"
            )
        nodes = [
            DemoNode("node-1"),
            DemoNode("node-2"),
            DemoNode("node-3", tls=tls, shared_key=DEMO_KEY),
        ]
        for node in nodes:
            await node.start()
        (workdir / "upstream.conf").write_text(upstream_conf(nodes))
        config = workdir / "agent.conf"
        config.write_text(agent_conf())
        agent = None
        interrupted = False
        try:
            agent = await _start_agent(config)
            interrupted = await _watch(nodes, agent, seconds, console)
            console.print()
            console.print("stopping: the agent flushes what it holds ...")
            await _stop_agent(agent)
        finally:
            for node in nodes:
                await node.kill()
        sent = _sent(agent)
        received = sum(n.received for n in nodes)
        lost = max(0, sent - received)
        duplicates = max(0, received - sent)
        per_node = ", ".join(f"{n.name} {n.received:,}" for n in nodes)
        verdict = "none lost" if lost == 0 else f"{lost:,} LOST"
        relation = "=" if sent == received else ","
        console.print(
            f"records sent {sent:,} {relation} records received {received:,} ({per_node}): {verdict}"
            + (f", {duplicates:,} duplicates (in flight at the outage)" if duplicates else "")
            + (" [interrupted]" if interrupted else ""),
            soft_wrap=True,
        )
        return 0 if lost == 0 and sent > 0 else 1


async def _watch(nodes: Sequence[DemoNode], agent: Any, seconds: float, console: Console) -> bool:
    """Refresh the table ~4x/s; take node-2 away halfway for OUTAGE_SECONDS."""
    start = time.monotonic()
    outage_at = seconds / 2
    restored = False
    note = f"node-2 goes down at {outage_at:.1f}s for {OUTAGE_SECONDS:.0f}s"
    victim = nodes[1]
    with Live(
        render(nodes, agent, 0, seconds, note), console=console, refresh_per_second=4
    ) as live:
        try:
            while (elapsed := time.monotonic() - start) < seconds:
                if victim.up and not restored and elapsed >= outage_at:
                    await victim.kill()
                    note = f"node-2 killed at {elapsed:.1f}s: its flushes fail over at once"
                elif not victim.up and elapsed >= outage_at + OUTAGE_SECONDS:
                    await victim.restore()
                    restored = True
                    note = f"node-2 restored at {elapsed:.1f}s: probed, then healthy again"
                live.update(render(nodes, agent, elapsed, seconds, note))
                await asyncio.sleep(0.25)
        except asyncio.CancelledError:
            return True
        finally:
            if not victim.up:
                await victim.restore()
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``relaybit --demo [--seconds N]``."""
    parser = argparse.ArgumentParser(prog="relaybit --demo", add_help=False)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    try:
        return asyncio.run(run_demo(max(args.seconds, 1.0), console))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
