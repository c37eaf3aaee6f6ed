"""HttpConnection on real sockets (127.0.0.1): hung receivers, large bodies, keepalive,
timeouts, source address and TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import psutil
import pytest

from relaybit.errors import DeliveryError
from relaybit.net.http_connection import HttpConnection
from relaybit.upstream.node import NetSettings, Node

BIG = 8 << 20  # far more than the socket buffers take: the rest waits in the client


def client_sockets(port: int) -> list[object]:
    """This process's TCP sockets connected to ``port`` (the client side)."""
    return [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status != psutil.CONN_TIME_WAIT
    ]


async def until(predicate: Callable[[], bool], what: str, deadline: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (AssertionError after ``deadline`` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"{what}: not within {deadline}s")
        await asyncio.sleep(0.01)


class Hung:
    """A receiver that accepts connections and never reads from them."""

    def __init__(self) -> None:
        self.peers: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.server: asyncio.Server | None = None

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append((reader, writer))

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest.fixture
async def hung() -> AsyncIterator[Hung]:
    receiver = Hung()
    receiver.server = await asyncio.start_server(receiver.accept, "127.0.0.1", 0)
    try:
        yield receiver
    finally:
        for _, writer in receiver.peers:
            writer.transport.abort()
        receiver.server.close()
        await receiver.server.wait_closed()


def plain(port: int, *, io_timeout: float | None = 0.3, **net: object) -> HttpConnection:
    node = Node(name="n", host="127.0.0.1", port=port)
    return HttpConnection(
        node,
        "127.0.0.1",
        port,
        ssl_context=None,
        net=NetSettings(**net),  # type: ignore[arg-type]
        io_timeout=io_timeout,
    )


# -- a receiver that never reads -----------------------------------------------------


async def test_a_receiver_that_never_reads_the_body_times_out_and_is_reset(hung: Hung) -> None:
    """aiohttp's read timeout does not cover sending the body, and its close is graceful:
    the socket stayed open to the hung receiver with the rest of the body buffered."""
    conn = plain(hung.port)
    try:
        request = asyncio.ensure_future(conn.request("POST", "/", data=b"x" * BIG))
        done, _ = await asyncio.wait({request}, timeout=30)  # a safety net, not the check
        assert done, "the request hung on a receiver that never reads"
        with pytest.raises(DeliveryError) as err:
            request.result()
        assert err.value.kind == "timeout"
        assert "peer not reading or not answering" in err.value.message
        assert not conn.is_usable()
        # the client socket goes at once, before the receiver reads a byte
        await until(lambda: not client_sockets(hung.port), "client socket closed")
        assert conn.open_transports == 0
        # ... with a reset: the receiver does not get the body's tail, it gets an error
        reader, _ = hung.peers[0]
        with pytest.raises(ConnectionResetError):
            while await reader.read(1 << 20):
                pass
    finally:
        await conn.aclose()
