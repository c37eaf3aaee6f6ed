"""An asyncio Forward server (in_forward): TCP, TLS or a unix socket, plus UDP heartbeats.

Each client connection runs the sans-IO codec.  Data events go to the async
``on_entries(tag, entries, records)`` handler; the ack (the client's chunk id,
byte for byte) is written only after the handler returned, i.e. after the
records are stored.  A bad client (malformed or oversize frame, failed
handshake, disconnect mid-frame) gets its connection closed with one log line
naming the peer and the reason; every other client goes on.  A client that
closes (or resets) its connection between frames is not an error.

With TLS the server accepts itself and hands each socket to
``loop.connect_accepted_socket(ssl=...)``: the event loop does the handshake
from the first byte and its failure is raised here, so it is logged once with
the peer.  (Upgrading with ``start_tls`` after accept loses the ClientHello
when it was read before the upgrade: uvloop#707, CPython#142352; and
``start_server(ssl=...)`` drops a failed handshake silently.)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from relaybit.codec.forward import auth
from relaybit.codec.forward.connection import DEFAULT_MAX_BUFFER_SIZE, ForwardConnection
from relaybit.codec.forward.events import (
    Ack,
    CompressedPackedForward,
    ConnectionClosed,
    Forward,
    Heartbeat,
    Helo,
    Message,
    NeedData,
    PackedForward,
    Ping,
    Pong,
)
from relaybit.codec.forward.state import Role
from relaybit.errors import RemoteProtocolError

OnEntries = Callable[[str, bytes, int], Awaitable[None]]

_DATA = (Message, Forward, PackedForward, CompressedPackedForward)


class _HeartbeatProtocol(asyncio.DatagramProtocol):
    """Fluentd's UDP heartbeat: any datagram gets a one-byte ``0x00`` answer."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(b"\x00", addr)


class ForwardServer:
    """A Forward protocol server; ``await start()``, then ``port`` is the bound port."""

    def __init__(
        self,
        on_entries: OnEntries,
        *,
        host: str = "0.0.0.0",
        port: int = 24224,
        unix_path: str | None = None,
        unix_perm: int | None = None,
        ssl: ssl_module.SSLContext | None = None,
        shared_key: str | None = None,
        self_hostname: str = "localhost",
        users: Mapping[str, str] | None = None,
        buffer_chunk_size: int = 1024 * 1024,
        buffer_max_size: int = DEFAULT_MAX_BUFFER_SIZE,
        handshake_timeout: float = 10.0,
        io_timeout: float = 0.0,
        udp_heartbeat: bool = True,
        logger: logging.Logger | None = None,
        name: str = "forward",
    ) -> None:
        self.on_entries = on_entries
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.unix_perm = unix_perm
        self.ssl = ssl
        self._shared_key = shared_key.encode() if shared_key is not None else None
        self.self_hostname = self_hostname.encode()
        self._users = {u.encode(): p.encode() for u, p in (users or {}).items()}
        self.buffer_chunk_size = max(buffer_chunk_size, 1024)
        self.buffer_max_size = buffer_max_size
        self.handshake_timeout = handshake_timeout
        #: ``net.io_timeout``: a connection silent this long is closed (0 = never)
        self.io_timeout = io_timeout
        self.udp_heartbeat = udp_heartbeat
        self.log = logger or logging.getLogger("relaybit.forward")
        self.name = name
        self._server: asyncio.Server | None = None
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._accepted: set[socket.socket] = set()  # not yet owned by a transport
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections_total = 0
        self.records_total = 0
        self.errors_total = 0

    def __repr__(self) -> str:
        where = self.unix_path or f"{self.host}:{self.port}"
        tls = " tls" if self.ssl else ""
        auth_ = " shared_key" if self._shared_key is not None else ""
        return (
            f"<ForwardServer {where}{tls}{auth_} clients={len(self._tasks)}"
            f" records={self.records_total}>"
        )

    async def start(self) -> None:
        """Bind and start serving (TCP + UDP heartbeat, or the unix socket)."""
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)
            self._server = await asyncio.start_unix_server(
                self._client, path=self.unix_path, limit=self.buffer_chunk_size
            )
            if self.unix_perm is not None:
                os.chmod(self.unix_path, self.unix_perm)
            return
        if self.ssl is None:
            self._server = await asyncio.start_server(
                self._client,
                self.host,
                self.port,
                limit=self.buffer_chunk_size,
                reuse_address=True,
            )
            family = self._server.sockets[0].family
            self.port = self._server.sockets[0].getsockname()[1]
        else:
            self._listeners = _listen(self.host, self.port)
            family = self._listeners[0].family
            self.port = self._listeners[0].getsockname()[1]
            self._acceptors = [
                asyncio.create_task(self._accept_tls(sock), name=f"{self.name} accept")
                for sock in self._listeners
            ]
        if self.udp_heartbeat:
            loop = asyncio.get_running_loop()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    _HeartbeatProtocol, local_addr=(self.host, self.port), family=family
                )
            except OSError as exc:
                self.log.warning(
                    "%s: UDP heartbeat not answered on %s:%s: %s",
                    self.name,
                    self.host,
                    self.port,
                    exc,
                )
            else:
                self._udp = transport

    async def stop(self) -> None:
        """Stop accepting, close every client connection and the UDP socket."""
        if self._server is not None:
            self._server.close()
        for acceptor in self._acceptors:
            acceptor.cancel()
        await asyncio.gather(*self._acceptors, return_exceptions=True)
        self._acceptors = []
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in list(self._accepted):  # accepted, but its task never ran
            sock.close()
        self._accepted.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    async def _accept_tls(self, listener: socket.socket) -> None:
        """Accept TLS clients on ``listener`` until cancelled; one task per client."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP:  # that client is gone already
                    continue
                if exc.errno in _ACCEPT_RETRY:  # out of descriptors or memory: back off
                    self.log.warning("%s: accept failed: %s; retrying in 1s", self.name, exc)
                    await asyncio.sleep(1.0)
                    continue
                self.log.error("%s: no longer accepting TLS clients: %s", self.name, exc)
                return
            self._accepted.add(sock)
            task = asyncio.create_task(self._tls_client(sock, _address_name(addr)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _tls_client(self, sock: socket.socket, peer: str) -> None:
        """Do the TLS handshake on an accepted socket, then serve it like any client."""
        assert self.ssl is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.buffer_chunk_size)
        protocol = asyncio.StreamReaderProtocol(reader)
        self._accepted.discard(sock)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                sock,
                ssl=self.ssl,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except asyncio.CancelledError:
            sock.close()
            return
        except Exception as exc:  # ssl.SSLError, reset, handshake timeout
            sock.close()
            self.connections_total += 1
            self._drop(peer, f"TLS handshake failed: {_tls_reason(exc)} ({_tls_hint(exc)})")
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self._client(reader, writer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections_total += 1
        peer = _peer_name(writer)
        try:
            await self._serve(reader, writer, peer)
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        conn = ForwardConnection(Role.SERVER, buffer_max_size=self.buffer_max_size)
        try:
            if self._shared_key is not None and not await self._handshake(
                reader, writer, conn, peer
            ):
                return
            while True:
                event = conn.next_event()
                if isinstance(event, NeedData):
                    if self.io_timeout > 0:
                        try:
                            async with asyncio.timeout(self.io_timeout):
                                data = await reader.read(self.buffer_chunk_size)
                        except TimeoutError:
                            idle = f"silent for net.io_timeout ({self.io_timeout:g}s)"
                            if conn.buffered:  # a frame started and never finished
                                self._drop(peer, f"{idle} with {conn.buffered} bytes of a frame")
                            else:
                                self.log.debug("%s: closing %s: %s", self.name, peer, idle)
                            return
                    else:
                        data = await reader.read(self.buffer_chunk_size)
                    conn.receive_data(data)
                    continue
                if isinstance(event, ConnectionClosed):
                    return
                if isinstance(event, Heartbeat):
                    continue
                if isinstance(event, _DATA):
                    try:
                        await self.on_entries(event.tag, event.entries, event.records)
                    except Exception as exc:  # not stored: close without acking
                        self._drop(peer, f"records not stored ({type(exc).__name__}: {exc})")
                        return
                    self.records_total += event.records
                    if event.chunk is not None:
                        writer.write(conn.send(Ack(event.chunk)))
                        await writer.drain()
        except RemoteProtocolError as exc:
            self._drop(peer, str(exc))
        except OSError as exc:  # reset, TLS error, keepalive timeout, no route to host ...
            if conn.buffered == 0 and isinstance(exc, _CLOSED_BETWEEN_FRAMES):
                # the client went away between frames (a TLS client's close often
                # ends in a reset, an abort never sends close_notify): nothing lost
                self.log.debug("%s: %s closed the connection (%s)", self.name, peer, exc)
                return
            where = f" in the middle of a frame ({conn.buffered} bytes)" if conn.buffered else ""
            self._drop(peer, f"connection lost{where}: {exc}")

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: ForwardConnection,
        peer: str,
    ) -> bool:
        assert self._shared_key is not None
        nonce = auth.new_nonce()
        auth_salt = auth.new_nonce() if self._users else b""
        writer.write(conn.send(Helo(nonce=nonce, auth=auth_salt, keepalive=True)))
        await writer.drain()
        try:
            async with asyncio.timeout(self.handshake_timeout):
                while isinstance(event := conn.next_event(), NeedData | Heartbeat):
                    if isinstance(event, NeedData):
                        conn.receive_data(await reader.read(self.buffer_chunk_size))
        except TimeoutError:
            self._drop(peer, f"handshake failed: no PING within {self.handshake_timeout:g}s")
            return False
        if isinstance(event, ConnectionClosed):
            self._drop(peer, "handshake failed: client closed the connection before PING")
            return False
        assert isinstance(event, Ping)
        reason = auth.check_ping(
            nonce=nonce,
            auth_salt=auth_salt,
            shared_key=self._shared_key,
            users=self._users,
            hostname=event.hostname,
            salt=event.shared_key_salt,
            digest=event.digest,
            username=event.username,
            user_digest=event.password_digest,
        )
        if reason is not None:
            writer.write(conn.send(Pong(False, reason, self.self_hostname, b"")))
            await writer.drain()
            who = event.hostname.decode("utf-8", "replace")
            user = event.username.decode("utf-8", "replace")
            detail = f" (user {user!r})" if reason == auth.REASON_USER else ""
            self._drop(peer, f"handshake failed: {reason.decode()} from host {who!r}{detail}")
            return False
        digest = auth.pong_digest(
            event.shared_key_salt, self.self_hostname, nonce, self._shared_key
        )
        writer.write(conn.send(Pong(True, b"", self.self_hostname, digest)))
        await writer.drain()
        return True

    def _drop(self, peer: str, reason: str) -> None:
        self.errors_total += 1
        self.log.warning("%s: closing connection from %s: %s", self.name, peer, reason)

    def status(self) -> dict[str, Any]:
        """Counters for the monitoring API."""
        return {
            "listen": self.unix_path or f"{self.host}:{self.port}",
            "tls": self.ssl is not None,
            "clients": len(self._tasks),
            "connections_total": self.connections_total,
            "records_total": self.records_total,
            "errors_total": self.errors_total,
        }


_ACCEPT_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_SKIP = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR})
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_CLOSED_BETWEEN_FRAMES = (ConnectionResetError, ConnectionAbortedError, ssl_module.SSLEOFError)


def _listen(
    host: str, port: int, *, backlog: int = socket.SOMAXCONN, reuse_port: bool = False
) -> list[socket.socket]:
    """Listening, non-blocking TCP sockets for ``host`` (every address it resolves to).

    With port 0 every address gets the port the first one was given.  A bind
    failure raises OSError naming the address (as ``asyncio.start_server`` does).
    ``reuse_port`` sets SO_REUSEPORT (``net.share_port``).
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, type_, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address!r}:"
                    f" {(exc.strerror or str(exc)).lower()}",
                ) from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _tls_reason(exc: Exception) -> str:
    """What went wrong in a failed server-side TLS handshake, never an empty string."""
    if isinstance(exc, ssl_module.SSLError):
        return _SSL_SOURCE.sub("", str(exc)) or type(exc).__name__
    if isinstance(exc, ConnectionError) and not str(exc):
        return "the client closed the connection during the handshake"
    return str(exc) or type(exc).__name__


def _address_name(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr or "?")


def _tls_hint(exc: BaseException) -> str:
    text = str(exc).upper()
    if "CERTIFICATE" in text:
        return "client certificate not accepted: check the client's tls.crt_file and tls.ca_file"
    return "is the client using TLS?"


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family == getattr(socket, "AF_UNIX", None):
        return f"unix:{sock.getsockname() or '?'}"
    return str(peer or "?")
