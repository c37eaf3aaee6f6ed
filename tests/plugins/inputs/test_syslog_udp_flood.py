"""A UDP flood against a paused syslog input: memory stays bounded, drops are counted.

The input emits into a real engine whose output holds every flush, so its
``mem_buf_limit`` pauses it.  A sender thread then floods the socket with a
bounded number of datagrams.  While paused the input holds at most
``MAX_HELD`` datagrams and runs no task per datagram; it stops reading the
socket, so the kernel drops what the socket's receive buffer cannot hold and
counts it.  Once the output takes flushes again every datagram is either
delivered or counted in ``dropped_datagrams``, the log has one line when the
reading stopped and one when it went on, and new datagrams arrive.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relaybit.agent import Agent
from relaybit.codec.msgpack import iter_entries
from relaybit.config.loader import load_config
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import INPUT_COMMON, FlushResult, InputContext, OutputPlugin
from relaybit.plugins.inputs import datagrams
from relaybit.plugins.inputs.syslog import SyslogInput
from relaybit.tag import compile_match
from relaybit.testing import wait_for

RFC5424 = "<13>1 2024-05-01T10:20:30.123Z web-1 nginx 4242 ACCESS - "
FLOOD = 20_000


class HeldOutput(OutputPlugin):
    """Holds every flush until ``gate`` is set; collects the ``n`` of each record."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[int] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        await self.gate.wait()
        self.seen.extend(int(r["message"].split()[1]) for _, r in iter_entries(chunk.data))
        return FlushResult.OK


def _syslog(emit: Any, *props: tuple[str, str]) -> SyslogInput:
    raw = [RawProperty(k, v, Origin("/etc/agent.conf", i + 2)) for i, (k, v) in enumerate(props)]
    options = (INPUT_COMMON + SyslogInput.options).resolve(raw, section="[INPUT]")
    return SyslogInput(
        InputContext(name="syslog.0", plugin="syslog", options=options, emit=emit, tag="sys")
    )


def _paused_engine() -> tuple[Engine, Any, HeldOutput]:
    """An engine whose output holds every flush: its input pauses at 64 KB."""
    engine = Engine(EngineSettings(flush=0.05, grace=1.0))
    emit = engine.add_input("syslog.0", mem_buf_limit=64 * 1024)
    out = HeldOutput()
    engine.add_output("out.0", out, compile_match("*"))
    return engine, emit, out


def _flood(port: int, start: int, count: int, seconds: float) -> int:
    """Send ``count`` datagrams (at most for ``seconds``); the number sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        for i in range(start, start + count):
            sock.sendto(f"{RFC5424}msg {i} {'x' * 150}".encode(), ("127.0.0.1", port))
            sent += 1
            if not i % 1000 and time.monotonic() > deadline:
                break
    finally:
        sock.close()
    return sent


async def test_a_udp_flood_against_a_paused_input_is_bounded_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    engine, emit, out = _paused_engine()
    await engine.start()
    inp = _syslog(
        emit,
        ("Mode", "udp"),
        ("Listen", "127.0.0.1"),
        ("Port", "0"),
        ("Receive_Buffer_Size", "128K"),  # the kernel holds a few hundred of them
    )
    await inp.start()
    try:
        sent = 0
        for _ in range(100):  # at a pace the input keeps up with, until it pauses
            sent += await asyncio.to_thread(_flood, inp.port, sent, 100, 5.0)
            await asyncio.sleep(0.02)
            if engine.inputs["syslog.0"].paused:
                break
        assert engine.inputs["syslog.0"].paused

        tasks_before = len(asyncio.all_tasks())
        flood = asyncio.create_task(asyncio.to_thread(_flood, inp.port, sent, FLOOD, 10.0))
        peak_tasks = 0
        while not flood.done():
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
            await asyncio.sleep(0.005)
        sent += await flood
        await wait_for(lambda: not inp.status()["reading"], what="the reading to stop")
        await asyncio.sleep(0.2)  # what the kernel still held has been read by now
        status: dict[str, Any] = inp.status()
        assert engine.inputs["syslog.0"].paused
        assert status["held_datagrams"] <= datagrams.MAX_HELD
        assert status["peak_held_datagrams"] <= datagrams.MAX_HELD
        assert peak_tasks <= tasks_before + 2  # no task per datagram
        metrics = inp.metrics()
        assert metrics["dropped_datagrams"] > 0  # the kernel's, for this socket
        assert metrics["reading_stops"] >= 1
        stopped = [r for r in caplog.records if "the socket is not read" in r.getMessage()]
        assert len(stopped) == 1 and "dropped_datagrams" in stopped[0].getMessage()

        out.gate.set()  # the output takes flushes: the input resumes, the queue drains
        dropped = inp.metrics()["dropped_datagrams"]
        await wait_for(
            lambda: len(out.seen) + dropped == sent, timeout=20, what="every datagram accounted"
        )
        assert len(set(out.seen)) == len(out.seen)  # none twice
        await wait_for(
            lambda: any("reading the socket again" in r.getMessage() for r in caplog.records),
            what="the line when the reading went on",
        )
        again = [r.getMessage() for r in caplog.records if "socket again" in r.getMessage()]
        assert len(again) == 1, again
        meanwhile = re.search(r"the kernel dropped (\d+) datagrams meanwhile", again[0])
        assert meanwhile is not None and 0 < int(meanwhile.group(1)) <= dropped, again
        assert inp.status()["reading"] is True

        late = await asyncio.to_thread(_flood, inp.port, 10**6, 5, 5.0)  # after the resume
        await wait_for(lambda: sum(n >= 10**6 for n in out.seen) == late, what="new datagrams")
        assert inp.metrics()["dropped_datagrams"] == dropped
    finally:
        await inp.stop()
        await engine.stop()


async def test_a_paused_unix_datagram_input_holds_its_senders_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unix datagram sockets have flow control: once the input stops reading, a sender
    gets EAGAIN (or blocks) instead of the kernel dropping; after the resume every
    datagram sent arrives."""
    monkeypatch.setattr(datagrams, "MAX_HELD", 50)
    engine, emit, out = _paused_engine()
    await engine.start()
    path = tmp_path / "log.sock"
    inp = _syslog(emit, ("Mode", "unix_udp"), ("Path", str(path)), ("Parser", "syslog-rfc5424"))
    await inp.start()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    sent = 0
    try:
        for _ in range(2000):  # bounded: the socket refuses well before
            try:
                sender.sendto(f"{RFC5424}msg {sent} {'x' * 500}".encode(), str(path))
            except BlockingIOError:
                if not inp.status()["reading"]:
                    break
                await asyncio.sleep(0.01)  # the input is still reading: let it
                continue
            sent += 1
            if not sent % 50:
                await asyncio.sleep(0)
        assert engine.inputs["syslog.0"].paused and not inp.status()["reading"]
        assert inp.status()["peak_held_datagrams"] <= 50
        assert "dropped_datagrams" not in inp.metrics()  # the kernel drops none here
        out.gate.set()
        await wait_for(lambda: len(out.seen) == sent, timeout=10, what="every datagram sent")
        assert sorted(out.seen) == list(range(sent))
        sender.sendto(f"{RFC5424}msg {sent} after".encode(), str(path))
        await wait_for(lambda: len(out.seen) == sent + 1, what="a datagram after the resume")
    finally:
        sender.close()
        await inp.stop()
        await engine.stop()


async def test_an_agent_reports_a_udp_inputs_dropped_datagrams(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name syslog\n    mode udp\n    listen 127.0.0.1\n    port 0\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf), http_server=True, http_port=0, http_listen="127.0.0.1")
    await agent.start()
    try:
        port = agent.inputs["syslog.0"].port  # type: ignore[attr-defined]
        await asyncio.to_thread(_flood, port, 0, 3, 5.0)
        await wait_for(lambda: agent.metrics()["input"]["syslog.0"]["records"] == 3)
        metrics = agent.metrics()["input"]["syslog.0"]
        assert metrics["dropped_datagrams"] == 0 and metrics["held_datagrams"] == 0
        base = f"http://127.0.0.1:{agent.monitoring.port}"  # type: ignore[union-attr]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}/api/v1/metrics/prometheus") as r,
        ):
            text = await r.text()
        assert 'relaybit_input_dropped_datagrams_total{name="syslog.0"} 0.0' in text
    finally:
        await agent.stop()
