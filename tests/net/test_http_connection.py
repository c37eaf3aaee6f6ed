"""HttpConnection on real sockets (127.0.0.1): hung receivers, large bodies, keepalive,
timeouts, source address and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import trustme
from aiohttp import web

from relaybit.errors import DeliveryError
from relaybit.net.http_connection import HttpConnection, HttpConnector, client_ssl_context
from relaybit.testing import wait_for
from relaybit.upstream.node import NetSettings, Node, TLSSettings, UpstreamSpec
from relaybit.upstream.upstream import Connection, Upstream

BIG = 8 << 20  # far more than the socket buffers take: the rest waits in the client


def client_sockets(port: int) -> list[object]:
    """This process's TCP sockets connected to ``port`` (the client side)."""
    return [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status != psutil.CONN_TIME_WAIT
    ]


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
        await wait_for(lambda: not client_sockets(hung.port), what="client socket closed")
        assert conn.open_transports == 0
        # ... with a reset: the receiver does not get the body's tail, it gets an error
        reader, _ = hung.peers[0]
        with pytest.raises(ConnectionResetError):
            while await reader.read(1 << 20):
                pass
    finally:
        await conn.aclose()


async def test_a_cancelled_request_resets_its_socket(hung: Hung) -> None:
    """A flush cancelled mid-body (shutdown, an outer deadline) leaves nothing behind."""
    conn = plain(hung.port, io_timeout=None)
    try:
        request = asyncio.ensure_future(conn.request("POST", "/", data=b"x" * BIG))
        done, _ = await asyncio.wait({request}, timeout=0.3)  # stuck sending the body
        assert not done
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not conn.is_usable()
        await wait_for(lambda: not client_sockets(hung.port), what="client socket closed")
    finally:
        await conn.aclose()


async def test_an_early_answer_while_the_body_is_unsent_leaves_no_socket() -> None:
    """A receiver answers (413) after the headers and stops reading: aiohttp closes the
    connection with the rest of the body buffered; it is reset instead."""
    held: list[asyncio.StreamWriter] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = plain(port, io_timeout=5)
    try:
        response = await conn.request("POST", "/", data=b"x" * BIG)
        assert (response.status, response.body) == (413, b"big")
        await wait_for(lambda: not client_sockets(port), what="client socket closed")
    finally:
        await conn.aclose()
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


# -- a well-behaved receiver -----------------------------------------------------------


@dataclass
class Seen:
    """One request as the receiver saw it."""

    peer: tuple[str, int]
    host: str | None
    content_type: str | None
    content_length: str | None
    body: bytes


@dataclass
class Receiver:
    """An aiohttp web server on 127.0.0.1 that records every request."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        host, port = request.transport.get_extra_info("peername")[:2]
        self.seen.append(
            Seen(
                (host, port),
                request.headers.get("Host"),
                request.headers.get("Content-Type"),
                request.headers.get("Content-Length"),
                await request.read(),
            )
        )
        return web.Response(text="ok")

    @property
    def ports(self) -> list[int]:
        """The client port of each request, in order."""
        return [s.peer[1] for s in self.seen]


@contextlib.asynccontextmanager
async def serve(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_a_large_body_arrives_whole_without_a_warning() -> None:
    """Over 1 MiB aiohttp warns about raw bytes (tests run with warnings as errors)."""
    body = bytes(range(256)) * (3 << 12)  # 3 MiB
    async with serve() as receiver:
        conn = plain(receiver.port, io_timeout=10)
        try:
            response = await conn.request(
                "POST", "/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"}
            )
            assert response.status == 200
            # the same connection sends it again (a retry on a reused connection)
            await conn.request("POST", "/_bulk", data=body)
        finally:
            await conn.aclose()
    first, second = receiver.seen
    assert first.body == body and second.body == body
    assert first.content_length == str(len(body))
    assert first.content_type == "application/x-ndjson"
    assert second.content_type == "application/octet-stream"


async def test_keepalive_reuses_one_socket_across_requests() -> None:
    async with serve() as receiver:
        conn = plain(receiver.port)
        try:
            for _ in range(3):
                assert (await conn.request("POST", "/", data=b"{}")).status == 200
            assert conn.is_usable()
            assert len(client_sockets(receiver.port)) == 1
        finally:
            await conn.aclose()
        await wait_for(lambda: not client_sockets(receiver.port), what="socket closed by aclose")
    assert len(set(receiver.ports)) == 1, receiver.ports


async def test_keepalive_off_opens_and_closes_a_socket_per_request() -> None:
    async with serve() as receiver:
        conn = plain(receiver.port, keepalive=False)
        try:
            for _ in range(3):
                assert (await conn.request("POST", "/", data=b"{}")).status == 200
                await wait_for(lambda: not client_sockets(receiver.port), what="socket closed")
            assert conn.is_usable()
        finally:
            await conn.aclose()
    assert len(set(receiver.ports)) == 3, receiver.ports


async def test_an_idle_keepalive_socket_closes_after_the_idle_timeout() -> None:
    async with serve() as receiver:
        conn = plain(receiver.port, keepalive_idle_timeout=0.2)
        try:
            await conn.request("GET", "/")
            assert client_sockets(receiver.port)
            await wait_for(lambda: not client_sockets(receiver.port), what="idle socket closed")
            assert conn.is_usable()
            await conn.request("GET", "/")  # a fresh socket, transparently
        finally:
            await conn.aclose()
    assert len(set(receiver.ports)) == 2, receiver.ports


async def test_an_idle_timeout_of_0_keeps_idle_sockets() -> None:
    """0 = no idle limit (as in the Upstream's pool), not "expire at once"."""
    async with serve() as receiver:
        conn = plain(receiver.port, keepalive_idle_timeout=0)
        try:
            for _ in range(3):
                await conn.request("GET", "/")
        finally:
            await conn.aclose()
    assert len(set(receiver.ports)) == 1, receiver.ports


def upstream_to(port: int, net: NetSettings, ssl_context: ssl.SSLContext | None = None) -> Upstream:
    spec = UpstreamSpec(name="up", nodes=(Node(name="n1", host="127.0.0.1", port=port),))
    connector = HttpConnector(lambda node: ssl_context, net, io_timeout=5)

    async def connect(node: Node, host: str, port: int) -> Connection:
        return await connector(node, host, port)

    return Upstream(spec, connect, net=net)


async def post(node: Node, connection: Connection) -> None:
    assert isinstance(connection, HttpConnection)
    response = await connection.request("POST", "/", data=b"{}")
    assert response.status == 200


async def test_keepalive_max_recycle_through_the_upstream() -> None:
    """Flushes share a socket per node; after ``keepalive_max_recycle`` requests a new one."""
    async with serve() as receiver:
        upstream = upstream_to(receiver.port, NetSettings(keepalive_max_recycle=2))
        await upstream.start()
        try:
            for _ in range(5):
                await upstream.deliver(post)
            await wait_for(lambda: len(client_sockets(receiver.port)) == 1, what="recycled closed")
        finally:
            await upstream.stop()
        await wait_for(lambda: not client_sockets(receiver.port), what="closed by stop()")
    a, b, c, d, e = receiver.ports
    assert a == b and c == d and len({a, c, e}) == 3, receiver.ports


async def test_a_hung_receiver_through_the_upstream_leaves_no_socket(hung: Hung) -> None:
    net = NetSettings()
    spec = UpstreamSpec(name="up", nodes=(Node(name="n1", host="127.0.0.1", port=hung.port),))
    connector = HttpConnector(lambda node: None, net, io_timeout=0.3)

    async def connect(node: Node, host: str, port: int) -> Connection:
        return await connector(node, host, port)

    async def send(node: Node, connection: Connection) -> None:
        assert isinstance(connection, HttpConnection)
        await connection.request("POST", "/", data=b"x" * BIG)

    upstream = Upstream(spec, connect, net=net)
    await upstream.start()
    try:
        for _ in range(3):
            with pytest.raises(Exception, match="peer not reading"):
                await upstream.deliver(send)
            await wait_for(
                lambda: not client_sockets(hung.port), what="socket reset after the flush"
            )
    finally:
        await upstream.stop()
    assert len(hung.peers) == 3


# -- connect timeout, source address ---------------------------------------------------


async def test_connect_timeout_against_a_full_listen_backlog() -> None:
    """A listener that never accepts, its backlog full: the SYN goes unanswered."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = stack.enter_context(socket.socket())
        filler.connect(("127.0.0.1", port))  # fills the backlog
        conn = plain(port, io_timeout=30, connect_timeout=0.3)
        try:
            with pytest.raises(DeliveryError) as err:
                await asyncio.wait_for(conn.request("GET", "/"), 30)  # safety net
        finally:
            await conn.aclose()
    assert err.value.kind == "timeout"
    assert "connect timed out after 0.3s" in err.value.message
    assert not conn.is_usable()


def _bindable(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
async def test_source_address_binds_outgoing_connections(source: str) -> None:
    if not _bindable(source):
        pytest.skip(f"{source} is not a local address here")
    async with serve() as receiver:
        conn = plain(receiver.port, source_address=source)
        try:
            await conn.request("GET", "/")
            await conn.request("GET", "/")
        finally:
            await conn.aclose()
    assert [s.peer[0] for s in receiver.seen] == [source, source]


async def test_a_source_address_that_is_not_local_fails_to_connect() -> None:
    async with serve() as receiver:
        conn = plain(receiver.port, source_address="192.0.2.1")  # TEST-NET-1
        try:
            with pytest.raises(DeliveryError) as err:
                await conn.request("GET", "/")
        finally:
            await conn.aclose()
    assert err.value.kind == "connect"
    assert not receiver.seen


# -- TLS: SNI, Host and verification per node ------------------------------------------

NAMES = ("node.example.test", "vhost.example.test")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, names: list[str | None]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*NAMES).configure_cert(ctx)

    def sni(sslobj: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        names.append(name)

    ctx.sni_callback = sni
    return ctx


def tls_connection(
    port: int, host: str, tls: TLSSettings, base_dir: Path, io_timeout: float | None = 5
) -> HttpConnection:
    node = Node(name="n", host=host, port=port, tls=tls)
    context = client_ssl_context(tls, base_dir)
    assert context is not None
    return HttpConnection(
        node, "127.0.0.1", port, ssl_context=context, net=NetSettings(), io_timeout=io_timeout
    )


@pytest.mark.parametrize(
    ("host", "vhost", "sni"),
    [
        ("node.example.test", None, "node.example.test"),
        ("other.example.test", "vhost.example.test", "vhost.example.test"),
    ],
)
async def test_tls_sends_sni_and_host_of_the_node_and_verifies_its_name(
    ca: trustme.CA, tmp_path: Path, host: str, vhost: str | None, sni: str
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = TLSSettings(enabled=True, ca_file="ca.pem", verify_hostname=True, vhost=vhost)
    names: list[str | None] = []
    async with serve(server_context(ca, names)) as receiver:
        conn = tls_connection(receiver.port, host, tls, tmp_path)
        try:
            assert (await conn.request("GET", "/")).status == 200
        finally:
            await conn.aclose()
    assert names == [sni]
    assert receiver.seen[0].host == f"{host}:{receiver.port}"  # Host stays the node's


@pytest.mark.parametrize(
    ("host", "tls", "ok"),
    [
        # the certificate is not signed by a CA the client knows
        ("node.example.test", TLSSettings(enabled=True), False),
        # the name is checked only with tls.verify_hostname (Fluent Bit's default: off)
        ("other.example.test", TLSSettings(enabled=True, ca_file="ca.pem"), True),
        (
            "other.example.test",
            TLSSettings(enabled=True, ca_file="ca.pem", verify_hostname=True),
            False,
        ),
        # tls.verify off accepts any certificate
        ("other.example.test", TLSSettings(enabled=True, verify=False), True),
    ],
)
async def test_tls_verification_follows_the_node_settings(
    ca: trustme.CA, tmp_path: Path, host: str, tls: TLSSettings, ok: bool
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    names: list[str | None] = []
    async with serve(server_context(ca, names)) as receiver:
        conn = tls_connection(receiver.port, host, tls, tmp_path)
        try:
            if ok:
                assert (await conn.request("GET", "/")).status == 200
            else:
                with pytest.raises(DeliveryError) as err:
                    await conn.request("GET", "/")
                assert err.value.kind == "tls"
                assert not conn.is_usable()
        finally:
            await conn.aclose()
        await wait_for(lambda: not client_sockets(receiver.port), what="client socket closed")
    assert bool(receiver.seen) is ok


async def test_a_tls_receiver_that_never_reads_is_reset(ca: trustme.CA, tmp_path: Path) -> None:
    """The same reset through a TLS transport (handshake done, then never read)."""
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    receiver = Hung()
    server_ctx = server_context(ca, [])
    receiver.server = await asyncio.start_server(receiver.accept, "127.0.0.1", 0, ssl=server_ctx)
    tls = TLSSettings(enabled=True, ca_file="ca.pem")
    conn = tls_connection(receiver.port, "node.example.test", tls, tmp_path, io_timeout=0.3)
    try:
        with pytest.raises(DeliveryError) as err:
            await asyncio.wait_for(conn.request("POST", "/", data=b"x" * BIG), 30)
        assert err.value.kind == "timeout"
        await wait_for(lambda: not client_sockets(receiver.port), what="client socket closed")
    finally:
        await conn.aclose()
        for _, writer in receiver.peers:
            writer.transport.abort()
        receiver.server.close()
        await receiver.server.wait_closed()
