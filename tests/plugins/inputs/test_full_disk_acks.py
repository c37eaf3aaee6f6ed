"""Nothing unstored is acknowledged: a forward ack waits while the disk is full.

A real agent with a forward input on filesystem storage under a small tmpfs
(mounted by the test as root) that a ballast file fills: the client's message
is not acked while its records cannot be stored, and is acked (and delivered
once) after the operator frees space.  Two inputs writing to the full storage
give one pause line between them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest

from relaybit.agent import Agent
from relaybit.config.loader import load_config
from relaybit.testing import wait_for


async def _send(
    port: int, chunk: str, records: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    entries = [[1_700_000_000 + i, {"n": i, "pad": "x" * 200}] for i in range(records)]
    writer.write(msgpack.packb(["app", entries, {"chunk": chunk, "size": records}]))
    await writer.drain()
    return reader, writer  # the writer kept: a collected StreamWriter closes the socket


async def test_a_forward_ack_waits_until_the_records_are_stored(
    tmp_path: Path, small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    disk = small_tmpfs(512 * 1024)
    out = tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"[SERVICE]\n    flush 0.1\n    grace 1\n    storage.path {disk}\n"
        "[INPUT]\n    name forward\n    listen 127.0.0.1\n    port 0\n"
        "    storage.type filesystem\n"
        "[INPUT]\n    name dummy\n    tag d\n    rate 50\n    storage.type filesystem\n"
        f"[OUTPUT]\n    name file\n    match app\n    path {out}\n    file got\n"
        "[OUTPUT]\n    name null\n    match d\n"
    )
    agent = Agent(load_config(conf))
    await agent.start()
    try:
        port = agent.inputs["forward.0"].port  # type: ignore[attr-defined]
        st = os.statvfs(disk)
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (st.f_bavail * st.f_frsize))  # the disk is full
        reader, writer = await _send(port, "c1", 500)
        engine = agent.engine
        assert engine.storage is not None
        guard = engine.storage.guard
        await wait_for(lambda: guard.paused and len(guard.inputs) == 2, what="both paused")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.5)  # no ack: not stored
        assert not (out / "got").exists() or b'"n":0' not in (out / "got").read_bytes()
        ballast.unlink()  # the operator frees space
        ack = msgpack.unpackb(await asyncio.wait_for(reader.read(100), 10))
        assert ack == {"ack": "c1"}
        await wait_for(
            lambda: (out / "got").exists() and (out / "got").read_text().count("\n") >= 500
        )
        assert (out / "got").read_text().count('"n":0,') == 1  # once
        storage_lines = [r.getMessage() for r in caplog.records if r.name == "relaybit.storage"]
        assert sum("storage full" in m for m in storage_lines) == 1  # one line for both inputs
        writer.close()
    finally:
        await agent.stop()
