"""An asyncio Forward server (in_forward): TCP, TLS or a unix socket, plus UDP heartbeats.

Each client connection is a :class:`_Client` protocol that runs the sans-IO
codec: no task, no read buffer and no unpacker while it is idle (a few KB a
connection), the codec's buffer only while a frame is in flight.  Data events
go to the async ``on_entries(tag, entries, records)`` handler; reading pauses
until it returned, then the ack (the client's chunk id, byte for byte) is
written, i.e. only after the records are stored.

Abuse is bounded per connection and never touches the others:

- a frame that declares more than ``buffer_max_size`` (its headers say so)
  or grows past it closes the connection at once; so do bytes that cannot
  start a frame and malformed msgpack (``too_large``, ``malformed``);
- a frame still incomplete ``frame_timeout`` seconds after its first bytes
  (a slow client), or no PING ``handshake_timeout`` seconds after HELO,
  closes it (``timeout``); with ``io_timeout`` (Fluent Bit's
  ``net.io_timeout``) a connection that sends nothing that long is closed;
- over ``max_connections`` open connections a new one is closed at once,
  with one log line per burst;
- every close is counted by reason (:class:`ConnectionStats`) and logged
  through a :class:`SummarisedLog`: the first lines per reason, then one
  summary line per interval, so no client floods the log.

A client that closes (or resets) its connection between frames is not an error.

With TLS the server accepts itself and hands each socket to
``loop.connect_accepted_socket(ssl=...)``: the event loop does the handshake
from the first byte and its failure is raised here, so it is logged with the
peer.  (Upgrading with ``start_tls`` after accept loses the ClientHello
when it was read before the upgrade: uvloop#707, CPython#142352; and
``start_server(ssl=...)`` drops a failed handshake silently.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
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
    Helo,
    Message,
    NeedData,
    PackedForward,
    Ping,
    Pong,
)
from relaybit.codec.forward.state import Role
from relaybit.errors import FrameTooLarge, RemoteProtocolError
from relaybit.net.limits import (
    DEFAULT_MAX_CONNECTIONS,
    ConnectionStats,
    SummarisedLog,
    refusal_log,
)
from relaybit.net.listen import (
    CLOSED_BETWEEN_FRAMES,
    accepted,
    address_name,
    handshake_failure,
    listen_sockets,
    peer_name,
    serve_tls,
)

OnEntries = Callable[[str, bytes, int], Awaitable[None]]
Data = Message | Forward | PackedForward | CompressedPackedForward

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
        frame_timeout: float = 30.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        backlog: int = socket.SOMAXCONN,
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
        #: a frame must be whole this long after its first bytes (0 = no limit)
        self.frame_timeout = frame_timeout
        self.backlog = backlog
        self.udp_heartbeat = udp_heartbeat
        self.log = logger or logging.getLogger("relaybit.forward")
        self.name = name
        self.stats = ConnectionStats(max_connections)
        self.log_closed = SummarisedLog(self.log, name)
        self.log_refused = refusal_log(self.log, name)
        self._server: asyncio.Server | None = None
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._accepted: set[socket.socket] = set()  # not yet owned by a transport
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # TLS handshakes, handlers running
        self._clients: set[_Client] = set()
        self.records_total = 0

    def __repr__(self) -> str:
        where = self.unix_path or f"{self.host}:{self.port}"
        tls = " tls" if self.ssl else ""
        auth_ = " shared_key" if self._shared_key is not None else ""
        return (
            f"<ForwardServer {where}{tls}{auth_} clients={len(self._clients)}"
            f" records={self.records_total}>"
        )

    async def start(self) -> None:
        """Bind and start serving (TCP + UDP heartbeat, or the unix socket)."""
        loop = asyncio.get_running_loop()
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)
            self._server = await loop.create_unix_server(
                self._protocol, path=self.unix_path, backlog=self.backlog
            )
            if self.unix_perm is not None:
                os.chmod(self.unix_path, self.unix_perm)
            return
        if self.ssl is None:
            self._server = await loop.create_server(
                self._protocol,
                self.host,
                self.port,
                reuse_address=True,
                backlog=self.backlog,
            )
            family = self._server.sockets[0].family
            self.port = self._server.sockets[0].getsockname()[1]
        else:
            self._listeners = listen_sockets(self.host, self.port, backlog=self.backlog)
            family = self._listeners[0].family
            self.port = self._listeners[0].getsockname()[1]
            self._acceptors = [
                asyncio.create_task(self._accept_tls(sock), name=f"{self.name} accept")
                for sock in self._listeners
            ]
        if self.udp_heartbeat:
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
        for sock in list(self._accepted):  # accepted, but its handshake never ran
            sock.close()
        self._accepted.clear()
        for client in list(self._clients):
            client.close()
        if self._clients:  # connection_lost runs on the next loop iterations
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    while self._clients:
                        await asyncio.sleep(0.01)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)
        self.log_closed.close()
        self.log_refused.close()

    def _protocol(self) -> _Client:
        return _Client(self)

    async def _accept_tls(self, listener: socket.socket) -> None:
        """Accept TLS clients on ``listener`` until cancelled; a task per handshake."""
        async for sock, addr in accepted(
            listener, self.log, prefix=f"{self.name}: ", what="TLS clients"
        ):
            if not self.stats.admit(self.log_refused):
                sock.close()
                continue
            self._accepted.add(sock)
            self.spawn(self._tls_client(sock, address_name(addr)))

    async def _tls_client(self, sock: socket.socket, peer: str) -> None:
        """Do the TLS handshake on an accepted socket; the protocol then serves it."""
        assert self.ssl is not None
        self._accepted.discard(sock)
        exc = await serve_tls(
            sock, lambda: _Client(self, peer), self.ssl, self.handshake_timeout, self.stats
        )
        if exc is not None:
            limit = f"net.accept_timeout ({self.handshake_timeout:g}s)"
            self.drop(peer, "tls", f"TLS handshake failed: {handshake_failure(exc, limit)}")

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def drop(self, peer: str, reason: str, message: str) -> None:
        """Count a connection closed for ``reason`` and log it (summarised)."""
        self.stats.reject(reason)
        self.log_closed.log(reason, "%s: closing connection from %s: %s", self.name, peer, message)

    @property
    def connections_total(self) -> int:
        """Connections accepted since start (refused ones not counted)."""
        return self.stats.accepted

    @property
    def errors_total(self) -> int:
        """Connections closed by the server for a reason (:meth:`drop`), all reasons."""
        return sum(self.stats.rejected.values())

    def status(self) -> dict[str, Any]:
        """Counters for the monitoring API."""
        return {
            "listen": self.unix_path or f"{self.host}:{self.port}",
            "tls": self.ssl is not None,
            "clients": len(self._clients),
            "connections_total": self.connections_total,
            "records_total": self.records_total,
            "errors_total": self.errors_total,
        }

    def metrics(self) -> dict[str, Any]:
        """Connection counters for ``/api/v1/metrics`` (open, refused, rejected by reason)."""
        return self.stats.metrics()


class _Client(asyncio.Protocol):
    """One client connection: bytes to the codec, events to the handler, acks back.

    Idle, it holds its transport, this object and a codec without buffers.
    """

    __slots__ = (
        "admitted",
        "busy",
        "closing",
        "conn",
        "handshake",
        "idle_timer",
        "last_read",
        "paused",
        "peer",
        "server",
        "timer",
        "transport",
    )

    def __init__(self, server: ForwardServer, peer: str | None = None) -> None:
        self.server = server
        self.peer = peer or "?"
        self.admitted = peer is not None  # TLS clients were admitted at accept
        self.transport: asyncio.Transport | None = None
        self.conn = ForwardConnection(Role.SERVER, buffer_max_size=server.buffer_max_size)
        self.busy = False  # a data event is being stored: reading paused
        self.paused = False  # the client does not read its acks: reading paused
        self.closing = False
        self.timer: asyncio.TimerHandle | None = None  # the frame's or the handshake's
        self.idle_timer: asyncio.TimerHandle | None = None  # net.io_timeout
        self.last_read = 0.0
        self.handshake: tuple[bytes, bytes] | None = None  # (nonce, auth salt) sent in HELO

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        self.transport = cast(asyncio.Transport, transport)
        if not self.admitted:
            if not server.stats.admit(server.log_refused):
                self.closing = True
                self.transport.abort()
                return
            self.admitted = True
            self.peer = peer_name(self.transport)
        server._clients.add(self)
        if server.io_timeout > 0:
            loop = asyncio.get_running_loop()
            self.last_read = loop.time()
            self.idle_timer = loop.call_later(server.io_timeout, self._idle_check)
        if server._shared_key is not None:
            nonce = auth.new_nonce()
            salt = auth.new_nonce() if server._users else b""
            self.handshake = (nonce, salt)
            self.transport.write(self.conn.send(Helo(nonce=nonce, auth=salt, keepalive=True)))
            self.conn.release()  # the packer that wrote HELO: none kept while idle
            if server.handshake_timeout > 0:
                self.timer = asyncio.get_running_loop().call_later(
                    server.handshake_timeout, self._handshake_timed_out
                )

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.idle_timer is not None:
            self.last_read = asyncio.get_running_loop().time()
        self.conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        if not self.closing:
            self.conn.receive_data(b"")
            self._process()
        # plain TCP stays half open for a pending ack (closed by _process); TLS cannot
        return self.server.ssl is None

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if not self.busy and not self.closing and self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        self._cancel_timers()
        if not self.admitted:
            return
        self.admitted = False
        server._clients.discard(self)
        server.stats.closed()
        if self.closing:
            return
        self.closing = True
        buffered = self.conn.buffered
        if buffered:
            detail = f": {exc}" if exc is not None else ""
            self._drop(
                "malformed", f"connection lost in the middle of a frame ({buffered} bytes){detail}"
            )
        elif exc is not None and not isinstance(exc, CLOSED_BETWEEN_FRAMES):
            self._drop("malformed", f"connection lost: {exc}")
        elif exc is not None:  # a reset between frames: nothing lost
            server.log.debug("%s: %s closed the connection (%s)", server.name, self.peer, exc)
        self.conn.release()

    # -- serving ------------------------------------------------------------------

    def _process(self) -> None:
        """Handle the whole frames buffered; a data frame is stored by a task."""
        if self.busy or self.closing:
            return
        event = self._pump()
        if event is not None:
            self.busy = True
            assert self.transport is not None
            self.transport.pause_reading()
            self.server.spawn(self._store(event))

    def _pump(self) -> Data | None:
        """Handle buffered frames until a data frame (returned) or bytes are needed."""
        conn = self.conn
        while not self.closing:
            try:
                event = conn.next_event()
            except FrameTooLarge as exc:
                self._drop("too_large", str(exc))
                return None
            except RemoteProtocolError as exc:
                self._drop("malformed", str(exc))
                return None
            if isinstance(event, NeedData):
                if conn.buffered:
                    self._arm_io_timeout()
                elif self.handshake is None:
                    self._cancel_timer()
                return None
            if self.handshake is None:
                self._cancel_timer()  # a frame is complete: the next one gets its own time
            if isinstance(event, ConnectionClosed):
                self.close()
                return None
            if isinstance(event, Ping):
                self._ping(event)
            elif isinstance(event, _DATA):
                return event
        return None

    async def _store(self, first: Data) -> None:
        """Store data frames in order, each acked once stored; then read again."""
        server = self.server
        event: Data | None = first
        while event is not None:
            try:
                await server.on_entries(event.tag, event.entries, event.records)
            except Exception as exc:  # not stored: close without acking
                self._drop("not_stored", f"records not stored ({type(exc).__name__}: {exc})")
                return
            server.records_total += event.records
            if self.closing or self.transport is None:
                return
            if event.chunk is not None:
                self.transport.write(self.conn.send(Ack(event.chunk)))
            event = self._pump()  # the frames that came meanwhile, in this task
        if self.closing or self.transport is None:
            return
        self.busy = False
        if not self.paused:
            self.transport.resume_reading()

    def _ping(self, event: Ping) -> None:
        server = self.server
        assert self.transport is not None and server._shared_key is not None
        if self.handshake is None:  # the codec allows a PING only after our HELO
            self._drop("malformed", "unexpected PING")
            return
        nonce, auth_salt = self.handshake
        self.handshake = None
        self._cancel_timer()
        reason = auth.check_ping(
            nonce=nonce,
            auth_salt=auth_salt,
            shared_key=server._shared_key,
            users=server._users,
            hostname=event.hostname,
            salt=event.shared_key_salt,
            digest=event.digest,
            username=event.username,
            user_digest=event.password_digest,
        )
        if reason is not None:
            self.transport.write(self.conn.send(Pong(False, reason, server.self_hostname, b"")))
            who = event.hostname.decode("utf-8", "replace")
            user = event.username.decode("utf-8", "replace")
            detail = f" (user {user!r})" if reason == auth.REASON_USER else ""
            self._drop(
                "auth", f"handshake failed: {reason.decode()} from host {who!r}{detail}", soft=True
            )
            return
        digest = auth.pong_digest(
            event.shared_key_salt, server.self_hostname, nonce, server._shared_key
        )
        self.transport.write(self.conn.send(Pong(True, b"", server.self_hostname, digest)))

    # -- closing ------------------------------------------------------------------

    def close(self) -> None:
        """Close after writing what is pending (acks)."""
        self.closing = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()

    def _drop(self, reason: str, message: str, *, soft: bool = False) -> None:
        """Close for ``reason`` at once (``soft``: after writing what is pending)."""
        self.server.drop(self.peer, reason, message)
        self.closing = True
        self._cancel_timers()
        if self.transport is not None:
            if soft:
                self.transport.close()
            else:
                self.transport.abort()
        self.conn.release()

    def _arm_io_timeout(self) -> None:
        if self.timer is None and self.server.frame_timeout > 0:
            self.timer = asyncio.get_running_loop().call_later(
                self.server.frame_timeout, self._frame_timed_out
            )

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _frame_timed_out(self) -> None:
        self.timer = None
        if not self.closing:
            self._drop(
                "timeout",
                f"frame not complete within frame_timeout ({self.server.frame_timeout:g}s):"
                f" {self.conn.buffered} bytes received",
            )

    def _idle_check(self) -> None:
        """net.io_timeout: close a connection that sent nothing for that long."""
        self.idle_timer = None
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        timeout = self.server.io_timeout
        left = self.last_read + timeout - loop.time()
        if left > 0 or self.busy:  # bytes came meanwhile, or we are the slow one
            self.idle_timer = loop.call_later(max(left, timeout / 10), self._idle_check)
            return
        idle = f"silent for net.io_timeout ({timeout:g}s)"
        if self.conn.buffered:  # a frame started and never finished
            self._drop("timeout", f"{idle} with {self.conn.buffered} bytes of a frame")
            return
        self.server.log.debug("%s: closing %s: %s", self.server.name, self.peer, idle)
        self.close()

    def _handshake_timed_out(self) -> None:
        self.timer = None
        if not self.closing:
            self._drop(
                "timeout", f"handshake failed: no PING within {self.server.handshake_timeout:g}s"
            )
