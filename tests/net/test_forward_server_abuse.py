"""The forward server under abuse: bounded per connection, counted, logged without a flood."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import msgpack
import pytest

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, default, iter_entries
from relaybit.net.forward_client import ForwardClient
from relaybit.net.forward_server import ForwardServer
from relaybit.testing import wait_for

T = EventTime(1700000000, 1)
LOGGER = "tests.forward.abuse"


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, object]] = []

    async def __call__(self, tag: str, entries: bytes, records: int) -> None:
        self.records += [(tag, r) for _, r in iter_entries(entries)]


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, default=default, use_bin_type=True)


@pytest.fixture
async def served() -> AsyncIterator[tuple[ForwardServer, Sink]]:
    sink = Sink()
    server = ForwardServer(
        sink,
        host="127.0.0.1",
        port=0,
        buffer_max_size=64 * 1024,
        frame_timeout=0.3,
        udp_heartbeat=False,
        logger=logging.getLogger(LOGGER),
    )
    await server.start()
    yield server, sink
    await server.stop()


async def closed_by_server(port: int, data: bytes, *, then: bytes = b"") -> bool:
    """Send ``data``; True when the server closes the connection (without more from us)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(5):
            got = await reader.read(100)
        return got == b""
    except ConnectionResetError:
        return True
    finally:
        await close(writer)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def good_client_works(server: ForwardServer, sink: Sink, n: int) -> None:
    client = await ForwardClient.connect("127.0.0.1", server.port)
    try:
        await client.send_chunk("ok", entry(T, {"n": n}), 1, require_ack=True, ack_timeout=5)
    finally:
        await client.aclose()
    assert ("ok", {"n": n}) in sink.records


def rejected(server: ForwardServer) -> dict[str, int]:
    return {k: v for k, v in server.metrics()["rejected"].items() if v}


async def test_declared_100mb_frame_closes_at_once(served: tuple[ForwardServer, Sink]) -> None:
    server, sink = served
    head = b"\x93\xa3tag\xc6" + (100 * 2**20).to_bytes(4, "big")  # nothing of the body sent
    assert await closed_by_server(server.port, head)
    assert rejected(server) == {"too_large": 1}
    await good_client_works(server, sink, 1)


async def test_msgpack_bombs_close_without_allocating(served: tuple[ForwardServer, Sink]) -> None:
    server, sink = served
    # declared at the top of the frame: closed at once
    assert await closed_by_server(server.port, b"\x92\xa3tag\xdd\xff\xff\xff\xff")
    assert rejected(server) == {"too_large": 1}
    # declared inside a record: nothing is built while it waits; cut by frame_timeout
    nested = [
        b"\x93\xa3tag\x01\xdf\xff\xff\xff\xff",  # a record of four billion pairs
        b"\x93\xa3tag\x01\x81\xa1k\xdd\x7f\xff\xff\xff",  # an array in the record
    ]
    for bomb in nested:
        assert await closed_by_server(server.port, bomb)
    assert rejected(server) == {"too_large": 1, "timeout": 2}
    await good_client_works(server, sink, 1)


async def test_random_bytes_and_cut_frames(served: tuple[ForwardServer, Sink]) -> None:
    server, sink = served
    assert await closed_by_server(server.port, b"\x16\x03\x01 a TLS hello or any noise")
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(pack(["t", T, {"cut": "short"}])[:-3])
    await writer.drain()
    await close(writer)
    await wait_for(lambda: server.metrics()["rejected"]["malformed"] == 2)
    await good_client_works(server, sink, 2)
    assert ("t", {"cut": "short"}) not in sink.records


async def test_slow_frame_is_cut_after_frame_timeout_idle_ones_are_not(
    served: tuple[ForwardServer, Sink],
) -> None:
    server, sink = served
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    frame = pack(["slow", T, {"a": 1}])
    writer.write(frame[:4])  # a frame started ...
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.read(100) == b""  # ... and not finished within 0.3 s
    await close(writer)
    assert rejected(server) == {"timeout": 1}
    await good_client_works(server, sink, 3)
    # the idle connection (no frame started) is still open and served
    idle_writer.write(pack(["idle", T, {"b": 2}, {"chunk": "c"}]))
    await idle_writer.drain()
    async with asyncio.timeout(5):
        assert msgpack.unpackb(await idle_reader.read(100)) == {"ack": "c"}
    await close(idle_writer)


async def test_connection_ceiling_refuses_new_clients_existing_ones_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    server = ForwardServer(
        sink,
        host="127.0.0.1",
        port=0,
        max_connections=2,
        udp_heartbeat=False,
        logger=logging.getLogger(LOGGER),
    )
    await server.start()
    caplog.set_level(logging.WARNING, LOGGER)
    try:
        first = await ForwardClient.connect("127.0.0.1", server.port)
        second = await asyncio.open_connection("127.0.0.1", server.port)
        await wait_for(lambda: server.metrics()["connections"] == 2)
        for _ in range(20):
            assert await closed_by_server(server.port, b"")
        assert server.metrics()["connections_refused"] == 20
        await first.send_chunk("kept", entry(T, {"a": 1}), 1, require_ack=True, ack_timeout=5)
        assert sink.records == [("kept", {"a": 1})]
        await first.aclose()
        await close(second[1])
        await wait_for(lambda: server.metrics()["connections"] == 0)
        await good_client_works(server, sink, 4)  # below the ceiling again
    finally:
        await server.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one line for the burst, one summary at stop
    assert "refusing new connections: 2 open, the most max_connections allows" in lines[0]
    assert "19 more connections refused" in lines[1]


async def test_garbage_does_not_flood_the_log(
    served: tuple[ForwardServer, Sink], caplog: pytest.LogCaptureFixture
) -> None:
    server, sink = served
    caplog.set_level(logging.WARNING, LOGGER)
    for i in range(40):
        await closed_by_server(server.port, b"\x01garbage %d" % i)
    await good_client_works(server, sink, 5)
    await server.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6, lines  # the first 5, then one summary line
    assert lines[-1].endswith("35 more connections closed for malformed in the last 10 s")
    assert server.metrics()["rejected"]["malformed"] == 40


async def test_idle_connections_hold_no_buffers(served: tuple[ForwardServer, Sink]) -> None:
    server, sink = served
    clients = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
    for _, writer in clients:
        writer.write(pack(["t", T, {"a": 1}]))
        await writer.drain()
    await wait_for(lambda: len(sink.records) == 5)
    assert server.metrics()["connections"] == 5
    for client in server._clients:
        assert client.conn._buf is None and client.conn._scanner is None
        assert client.conn._packer_ is None and client.timer is None
    for _, writer in clients:
        await close(writer)
    await wait_for(lambda: server.metrics()["connections"] == 0)


async def test_idle_clients_of_a_shared_key_server_hold_no_buffers() -> None:
    server = ForwardServer(
        Sink(), host="127.0.0.1", port=0, shared_key="k", udp_heartbeat=False, handshake_timeout=5
    )
    await server.start()
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await wait_for(lambda: server.metrics()["connections"] == 1)
        (client,) = server._clients
        assert client.conn._buf is None and client.conn._packer_ is None
        await close(writer)
    finally:
        await server.stop()


async def test_a_silent_handshake_is_cut_after_accept_timeout() -> None:
    server = ForwardServer(
        Sink(),
        host="127.0.0.1",
        port=0,
        shared_key="k",
        udp_heartbeat=False,
        handshake_timeout=0.2,
        logger=logging.getLogger(LOGGER),
    )
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(5):
            helo = await reader.read(1024)
            assert msgpack.unpackb(helo)[0] == "HELO"
            assert await reader.read(1024) == b""  # no PING: closed
        assert rejected(server) == {"timeout": 1}
        await close(writer)
    finally:
        await server.stop()


def test_the_same_limits_on_uvloop() -> None:
    """The agent runs on uvloop: ceiling, too large, slow frame, pipelined frames."""
    uvloop = pytest.importorskip("uvloop")

    async def body() -> None:
        gate = asyncio.Event()
        stored: list[int] = []

        async def slow(tag: str, entries: bytes, records: int) -> None:
            await gate.wait()
            stored.append(records)

        server = ForwardServer(
            slow,
            host="127.0.0.1",
            port=0,
            max_connections=3,
            frame_timeout=0.3,
            buffer_max_size=64 * 1024,
            udp_heartbeat=False,
            logger=logging.getLogger(LOGGER),
        )
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            frames = b"".join(pack(["t", T, {"n": i}, {"chunk": f"c{i}"}]) for i in range(3))
            writer.write(frames)  # pipelined while the first is being stored
            await writer.drain()
            assert await closed_by_server(server.port, b"\x92\xa3tag\xc6\x10\x00\x00\x00")
            assert await closed_by_server(server.port, pack(["slow", T, {"a": 1}])[:5])
            others = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
            await wait_for(lambda: server.metrics()["connections"] == 3)
            assert await closed_by_server(server.port, b"")  # over the ceiling
            gate.set()
            acks = b""
            async with asyncio.timeout(5):
                while acks.count(b"ack") < 3:
                    acks += await reader.read(100)
            assert stored == [1, 1, 1]
            unpacker = msgpack.Unpacker()
            unpacker.feed(acks)
            assert [a["ack"] for a in unpacker] == ["c0", "c1", "c2"]
            assert rejected(server) == {"too_large": 1, "timeout": 1}
            assert server.metrics()["connections_refused"] == 1
            for _, other in [*others, (reader, writer)]:
                await close(other)
        finally:
            await server.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(body())
