"""tcp and syslog (tcp mode) under abuse: the connection ceiling, slow records cut by
frame_timeout, malformed clients logged without a flood, counters in metrics()."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from input_helpers import BatchCollector, until

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import INPUT_COMMON, InputContext, InputPlugin
from relaybit.plugins.inputs.syslog import SyslogInput
from relaybit.plugins.inputs.tcp import TcpInput

LOGGER = "tests.stream.abuse"
SYSLOG_LINE = b"<13>1 2026-01-01T00:00:00Z host app - - - hello\n"


async def serve(cls: type[InputPlugin], running: list[Any], **props: str) -> Any:
    props = {"listen": "127.0.0.1", "port": "0", **props}
    raw = [RawProperty(k, v, Origin("t.conf", 1)) for k, v in props.items()]
    opts = (INPUT_COMMON + cls.options).resolve(raw, section="[INPUT] x")
    name = f"{cls.__name__.lower()}.0"
    ctx = InputContext(
        name=name,
        plugin=name,
        options=opts,
        emit=BatchCollector(),
        logger=logging.getLogger(LOGGER),
    )
    plugin = cls(ctx)
    await plugin.start()
    running.append(plugin)
    return plugin


async def closed_by_server(port: int, data: bytes = b"") -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if data:
            writer.write(data)
            await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(100) == b""
    except ConnectionResetError:
        return True
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.mark.parametrize(
    ("cls", "props", "good"),
    [
        (TcpInput, {}, b'{"ok": 1}\n'),
        (SyslogInput, {"mode": "tcp"}, SYSLOG_LINE),
    ],
    ids=["tcp", "syslog"],
)
async def test_ceiling_refuses_new_connections_existing_ones_served(
    cls: type[InputPlugin],
    props: dict[str, str],
    good: bytes,
    running: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    plugin = await serve(cls, running, max_connections="2", **props)
    kept = [await asyncio.open_connection("127.0.0.1", plugin.port) for _ in range(2)]
    await until(lambda: plugin.metrics()["connections"] == 2)
    for _ in range(10):
        assert await closed_by_server(plugin.port)
    assert plugin.metrics()["connections_refused"] == 10
    kept[0][1].write(good)  # an existing client is served
    await kept[0][1].drain()
    await until(lambda: len(plugin.ctx.emit.batches) == 1)
    refusing = [line for line in lines(caplog) if "refusing new connections" in line]
    assert len(refusing) == 1
    for _, writer in kept:
        writer.close()
    await until(lambda: plugin.metrics()["connections"] == 0)


@pytest.mark.parametrize(
    ("cls", "props", "start"),
    [
        (TcpInput, {}, b'{"slow": '),
        (SyslogInput, {"mode": "tcp"}, b"<13>1 2026-01-01T00:00:00Z host"),
    ],
    ids=["tcp", "syslog"],
)
async def test_a_slow_record_is_cut_after_frame_timeout(
    cls: type[InputPlugin], props: dict[str, str], start: bytes, running: list[Any]
) -> None:
    plugin = await serve(cls, running, frame_timeout="0.3", **props)
    idle = await asyncio.open_connection("127.0.0.1", plugin.port)  # silent: kept
    assert await closed_by_server(plugin.port, start)
    assert plugin.metrics()["rejected"]["timeout"] == 1
    assert plugin.metrics()["connections"] == 1  # the idle one
    idle[1].close()


async def test_net_io_timeout_closes_a_silent_connection(running: list[Any]) -> None:
    plugin = await serve(TcpInput, running, **{"net.io_timeout": "0.2"})
    assert await closed_by_server(plugin.port)
    assert plugin.metrics()["rejected"]["timeout"] == 0  # idle: not a slow record


@pytest.mark.parametrize(
    ("cls", "props", "junk"),
    [
        (TcpInput, {}, b"not json at all\n"),
        (SyslogInput, {"mode": "tcp"}, b"this is no syslog message\n"),
    ],
    ids=["tcp", "syslog"],
)
async def test_malformed_clients_do_not_flood_the_log(
    cls: type[InputPlugin],
    props: dict[str, str],
    junk: bytes,
    running: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    plugin = await serve(cls, running, **props)
    for _ in range(30):
        _reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
        writer.write(junk * 3)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await until(lambda: plugin.metrics()["rejected"]["malformed"] == 90)
    await until(lambda: plugin.metrics()["connections"] == 0)
    await plugin.stop()
    running.remove(plugin)
    got = lines(caplog)
    assert len(got) == 6, got  # 5 connections' lines, then one summary
    assert got[-1].endswith("25 more connections warned for malformed data in the last 10 s")
