"""HttpConnection against misbehaving receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from relaybit.errors import DeliveryError
from relaybit.net.http_connection import HttpConnection
from relaybit.upstream.node import NetSettings, Node


@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
async def test_a_receiver_that_never_reads_the_body_times_out() -> None:
    """aiohttp's read timeout does not cover sending the body: a receiver that accepts
    but never reads used to hold the request (and the flush) forever."""
    held: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    node = Node(name="n", host="127.0.0.1", port=port)
    conn = HttpConnection(
        node, "127.0.0.1", port, ssl_context=None, net=NetSettings(), io_timeout=0.3
    )
    request = asyncio.ensure_future(conn.request("POST", "/", data=b"x" * (64 << 20)))
    try:
        done, _ = await asyncio.wait({request}, timeout=30)  # a safety net, not the check
        assert done, "the request hung on a receiver that never reads"
        with pytest.raises(DeliveryError) as err:
            request.result()
        assert err.value.kind == "timeout"
        assert "peer not reading or not answering" in err.value.message
        assert not conn.is_usable()
    finally:
        request.cancel()
        await conn.aclose()
        for w in held:
            w.transport.abort()
        server.close()
        await server.wait_closed()
