import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relaybit.codec.forward import auth
from relaybit.codec.forward.connection import ForwardConnection, entry
from relaybit.codec.forward.events import (
    Ack,
    ConnectionClosed,
    Helo,
    NeedData,
    PackedForward,
    Ping,
    Pong,
)
from relaybit.codec.forward.state import Role
from relaybit.errors import DeliveryError
from relaybit.net.forward_client import ForwardClient

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ForwardConnection], Awaitable[None]]


async def next_event(reader: asyncio.StreamReader, conn: ForwardConnection) -> object:
    while isinstance(event := conn.next_event(), NeedData):
        conn.receive_data(await reader.read(65536))
    return event


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(script: Script) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await script(reader, writer, ForwardConnection(Role.SERVER))

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for w in writers:
        w.close()
    for s in servers:
        s.close()
        await s.wait_closed()


async def test_wrong_ack_id_is_a_mismatch(fake_server: Callable[[Script], Awaitable[int]]) -> None:
    async def script(
        r: asyncio.StreamReader, w: asyncio.StreamWriter, c: ForwardConnection
    ) -> None:
        ev = await next_event(r, c)
        assert isinstance(ev, PackedForward) and ev.chunk is not None
        w.write(c.send(Ack(str(ev.chunk) + "\n")))  # Fluentd-style newline: not byte-exact

    client = await ForwardClient.connect("127.0.0.1", await fake_server(script))
    with pytest.raises(DeliveryError) as info:
        await client.send_chunk("t", entry(1, {}), 1, require_ack=True, ack_timeout=5)
    assert info.value.kind == "ack_mismatch"
    assert not client.is_usable()
    await client.aclose()
    assert "closed" in repr(client)


async def test_server_digest_mismatch_is_detected(
    fake_server: Callable[[Script], Awaitable[int]],
) -> None:
    async def script(
        r: asyncio.StreamReader, w: asyncio.StreamWriter, c: ForwardConnection
    ) -> None:
        nonce = auth.new_nonce()
        w.write(c.send(Helo(nonce=nonce)))
        ping = await next_event(r, c)
        assert isinstance(ping, Ping)
        # accepts anything, but does not know the key
        bad = auth.pong_digest(ping.shared_key_salt, b"srv", nonce, b"other key")
        w.write(c.send(Pong(True, b"", b"srv", bad)))

    with pytest.raises(DeliveryError) as info:
        await ForwardClient.connect("127.0.0.1", await fake_server(script), shared_key="k")
    assert info.value.kind == "handshake"
    assert "server digest mismatch" in info.value.message


async def test_peer_closing_before_ack_is_a_failure(
    fake_server: Callable[[Script], Awaitable[int]],
) -> None:
    async def script(
        r: asyncio.StreamReader, w: asyncio.StreamWriter, c: ForwardConnection
    ) -> None:
        await next_event(r, c)
        w.close()

    client = await ForwardClient.connect("127.0.0.1", await fake_server(script))
    with pytest.raises(DeliveryError, match="closed the connection before acking"):
        await client.send_chunk("t", entry(1, {}), 1, require_ack=True, ack_timeout=5)
    await client.aclose()


async def test_idle_connection_closed_by_peer_is_not_usable(
    fake_server: Callable[[Script], Awaitable[int]],
) -> None:
    async def script(
        r: asyncio.StreamReader, w: asyncio.StreamWriter, c: ForwardConnection
    ) -> None:
        w.close()

    client = await ForwardClient.connect("127.0.0.1", await fake_server(script))
    async with asyncio.timeout(5):
        while client.is_usable():
            await asyncio.sleep(0.01)
    with pytest.raises(DeliveryError, match="unusable"):
        await client.send_chunk("t", entry(1, {}), 1)
    await client.aclose()


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError) as info:
        await ForwardClient.connect("127.0.0.1", port, timeout=2)
    assert info.value.kind == "connect"
    assert f"127.0.0.1:{port}" in info.value.message


async def test_pending_ack_reused_connection_and_heartbeat(
    fake_server: Callable[[Script], Awaitable[int]],
) -> None:
    async def script(
        r: asyncio.StreamReader, w: asyncio.StreamWriter, c: ForwardConnection
    ) -> None:
        while not isinstance(ev := await next_event(r, c), ConnectionClosed):
            if isinstance(ev, PackedForward) and ev.chunk is not None:
                w.write(c.send(Ack(ev.chunk)))

    client = await ForwardClient.connect("127.0.0.1", await fake_server(script))
    for _ in range(3):
        await client.send_chunk("t", entry(1, {}), 1, require_ack=True, ack_timeout=5)
        await client.heartbeat()
    assert client.is_usable() and client.sent_chunks == 3
    await client.aclose()
    assert not client.is_usable()


async def test_write_timeout_to_a_hung_peer_closes_the_socket_at_once() -> None:
    """A receiver that accepts but never reads: the write times out (acks off too), and
    closing the broken connection releases its socket now; a graceful close would wait
    for the unsent bytes forever (the socket leaked, and failover waited on it)."""
    held: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await ForwardClient.connect("127.0.0.1", port, timeout=2.0)
    try:
        big = entry(1700000000, {"log": "x" * (1 << 20)})
        with pytest.raises(DeliveryError) as err:
            await client.send_chunk("t", big * 32, 32, ack_timeout=0.3)
        assert err.value.kind == "write" and "timed out" in err.value.message
        assert not client.is_usable()
        sock = client._writer.transport.get_extra_info("socket")
        await client.aclose()
        assert sock.fileno() == -1, "the socket of a broken connection was left open"
    finally:
        await client.aclose()
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
