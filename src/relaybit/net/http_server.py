"""The HTTP server of the http and elasticsearch inputs: HTTP/1.1 (h11) and HTTP/2 (h2).

One :class:`HttpServer` accepts on ``host:port`` itself (as the forward server
does), so that it decides per connection before any byte is read:

- over ``max_connections`` open connections a new one is closed at once, and
  one line per burst says so;
- with TLS the event loop does the handshake (``net.accept_timeout``) and a
  failure is logged as a warning naming the peer and the reason; ALPN offers
  ``h2`` when HTTP/2 is on;
- in clear text, a connection that opens with the HTTP/2 preface speaks HTTP/2
  (h2c with prior knowledge), any other speaks HTTP/1.x.

A connection holds no parser and no buffer while idle: an HTTP/1.1 request's
head is gathered until its blank line (at most :data:`MAX_HEAD` bytes), then a
fresh ``h11.Connection`` reads that request and is dropped once the response
is sent.  A request whose declared (``Content-Length``) or read body passes
``max_body`` is answered 413 and its connection closed without reading the
rest; a request whose head or body takes longer than ``io_timeout`` is
answered 408 and closed; a connection idle longer than ``idle_timeout`` is
closed.  The request bodies held at once across connections (read, not yet
stored) are bounded by ``body_budget`` and the requests being stored by
``max_pending``: past either a request is answered 503, so memory stays
bounded however many clients send at once.  Every rejection is counted by reason (:class:`ConnectionStats`) and
logged through a :class:`SummarisedLog`, so no client can flood the log.
Errors always get an ``HTTP/1.1`` status line.  Requests Fluent Bit accepts
and h11 does not (a blank ``Transfer-Encoding:`` beside a ``Content-Length``)
are normalised before h11 reads the head.

The handler sees whole requests (:class:`Request`) and answers a
:class:`Reply`; the response is written only after the handler returned, so
the input acknowledges nothing it has not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
import socket
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11

from relaybit.net.limits import ConnectionStats, SummarisedLog, refusal_log
from relaybit.net.listen import (
    accepted,
    address_name,
    handshake_failure,
    handshake_timed_out,
    listen_sockets,
    serve_tls,
)

#: Largest request head (request line and headers) read, in bytes (431 above).
MAX_HEAD = 64 * 1024
#: Bytes of a refused request's body drained (at most 1 s) before the close, so
#: that the client reads the error instead of a reset.
DRAIN_LIMIT = 256 * 1024
#: Concurrent streams offered to an HTTP/2 client.
H2_MAX_STREAMS = 16
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_HEAD_END = re.compile(rb"\r?\n\r?\n")
#: header lines Fluent Bit tolerates and h11 refuses: a blank Transfer-Encoding
_BLANK_TE = re.compile(rb"\r?\ntransfer-encoding:[ \t]*(?=\r?\n)", re.IGNORECASE)


@dataclass(slots=True)
class Request:
    """One whole request, as the input's handler sees it (any HTTP version)."""

    method: str
    target: str  #: the request target as sent (path and query)
    headers: dict[str, str]  #: lower-case names; repeated headers joined by ", "
    peer: str  #: "host:port" of the client
    version: str  #: "1.0", "1.1" or "2"
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0] or "/"

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class Reply:
    """What the handler answers; ``reject`` names the reason when it refuses the request."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    reject: str | None = None  #: malformed, too_large, auth, ... (counted and logged)
    log: str | None = None  #: the log line's reason when rejected (default: the body)


class Handler:
    """What an input implements: ``check`` (the head, before the body) and ``handle``."""

    def check(self, request: Request) -> Reply | None:
        """A reply to refuse the request before its body is read (auth), or None."""
        return None

    async def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def too_large(self, request: Request | None, limit: int) -> Reply:
        """The 413 answer for a body over ``limit``."""
        return Reply(413, b"error: payload larger than buffer_max_size\n", reject="too_large")

    def busy(self) -> Reply:
        """The 503 answer when the requests in flight are at their limits (Fluent Bit's)."""
        return Reply(503, b"error: deferred ingress queue is full\n", reject="busy")


@dataclass(slots=True)
class ServerSettings:
    """How an :class:`HttpServer` listens and what it allows."""

    host: str = "0.0.0.0"
    port: int = 0
    max_body: int = 4 * 1024 * 1024
    http2: bool = True
    ssl: ssl_module.SSLContext | None = None
    max_connections: int = 0  #: 0: no ceiling
    idle_timeout: float = 10.0  #: keep-alive idle time (0: none)
    io_timeout: float = 30.0  #: time for a request's head, then for its body (0: none)
    accept_timeout: float = 10.0  #: TLS handshake time
    accept_timeout_log_error: bool = True
    keepalive: bool = True
    backlog: int = 128
    reuse_port: bool = False
    #: bytes of request bodies held at once, read and not yet stored (0: no limit)
    body_budget: int = 256 * 1024 * 1024
    #: requests whose records are being stored at once (0: no limit)
    max_pending: int = 8192


#: Reason phrases as Fluent Bit writes them where Python's differ.
_PHRASES = {413: "Payload Too Large"}


def _reason_phrase(status: int) -> str:
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _raw_response(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    """An HTTP/1.1 response that closes the connection (errors outside h11's cycle)."""
    lines = [f"HTTP/1.1 {status} {_reason_phrase(status)}"]
    lines += [
        f"{k}: {v}" for k, v in headers or () if k.lower() not in ("content-length", "connection")
    ]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


class HttpServer:
    """Accepts HTTP/1.x and HTTP/2 clients and runs ``handler`` per request."""

    def __init__(
        self,
        handler: Handler,
        settings: ServerSettings,
        *,
        name: str,
        logger: logging.Logger,
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.name = name
        self.log = logger
        self.port = settings.port
        self.stats = ConnectionStats(settings.max_connections)
        # the plugin's logger names the instance already
        self.log_rejects = SummarisedLog(logger, "", what="requests rejected")
        self.log_refused = refusal_log(logger, name)
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self.connections: set[_Connection] = set()
        self.handlers: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.inflight = 0  #: bytes of request bodies held now (read, not yet stored)
        if settings.ssl is not None and settings.http2:
            settings.ssl.set_alpn_protocols(["h2", "http/1.1"])

    def __repr__(self) -> str:
        tls = " tls" if self.settings.ssl else ""
        return f"<HttpServer {self.settings.host}:{self.port}{tls} {self.stats!r}>"

    async def start(self) -> None:
        s = self.settings
        self._listeners = listen_sockets(s.host, s.port, backlog=s.backlog, reuse_port=s.reuse_port)
        self.port = self._listeners[0].getsockname()[1]
        self._acceptors = [
            asyncio.create_task(self._accept(sock), name=f"{self.name} accept")
            for sock in self._listeners
        ]
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.name} timeouts")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let running handlers finish (up to ``grace`` s), close all."""
        tasks = [*self._acceptors, *self._handshakes]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._acceptors, self._sweeper = [], None
        for sock in self._listeners:
            sock.close()
        self._listeners = []
        if self.handlers:
            await asyncio.wait(set(self.handlers), timeout=grace)
        for task in list(self.handlers):
            task.cancel()
        if self.handlers:
            await asyncio.gather(*self.handlers, return_exceptions=True)
        for conn in list(self.connections):
            conn.abort()
        self.log_rejects.close()
        self.log_refused.close()

    # ------------------------------------------------------------------ accepting

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async for sock, addr in accepted(listener, self.log):
            peer = address_name(addr)
            if not self.stats.admit(self.log_refused, "http_server.max_connections"):
                sock.close()
                continue
            if self.settings.ssl is None:
                try:
                    await loop.connect_accepted_socket(self._factory(peer), sock)
                except Exception as exc:  # that client only; the acceptor goes on
                    self.log.debug("serving %s failed: %s", peer, exc)
                    sock.close()
                    self.stats.closed()
                continue
            task = asyncio.create_task(self._tls(sock, peer))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _factory(self, peer: str) -> Callable[[], _Connection]:
        return lambda: _Connection(self, peer)

    async def _tls(self, sock: socket.socket, peer: str) -> None:
        assert self.settings.ssl is not None
        exc = await serve_tls(
            sock,
            lambda: _Connection(self, peer),
            self.settings.ssl,
            self.settings.accept_timeout,
            self.stats,
        )
        if exc is not None:
            self.stats.reject("tls")
            level = logging.WARNING
            if handshake_timed_out(exc) and not self.settings.accept_timeout_log_error:
                level = logging.DEBUG
            reason = handshake_failure(
                exc, f"net.accept_timeout ({self.settings.accept_timeout:g}s)"
            )
            self.log_rejects.log(
                "tls",
                "closing connection from %s: TLS handshake failed: %s",
                peer,
                reason,
                level=level,
            )

    async def _sweep(self) -> None:
        s = self.settings
        timeouts = [t for t in (s.idle_timeout, s.io_timeout) if t > 0]
        tick = min(1.0, max(0.05, min(timeouts, default=1.0) / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.deadline and now >= conn.deadline:
                    try:
                        conn.timed_out()
                    except Exception as exc:  # that connection only; the sweeper goes on
                        self.log.debug("timing out %r failed: %s", conn, exc, exc_info=True)
                        conn.abort()

    # ------------------------------------------------------------------ for connections

    def reject(self, peer: str, reason: str, message: str) -> None:
        self.stats.reject(reason)
        self.log_rejects.log(reason, "rejected a request from %s: %s", peer, message)

    def too_large(self, peer: str, request: Request | None) -> Reply:
        """Count and log a request whose body passes ``buffer_max_size``; the handler's reply."""
        self.reject(
            peer,
            "too_large",
            f"body larger than buffer_max_size ({self.settings.max_body} bytes)",
        )
        return self.handler.too_large(request, self.settings.max_body)

    def check(self, request: Request) -> Reply | None:
        """The handler's early refusal of a request from its head (counted and logged),
        or None when its body may come."""
        early = self.handler.check(request)
        if early is not None:
            self._count_refusal(request.peer, early)
        return early

    def _count_refusal(self, peer: str, reply: Reply) -> None:
        """Count and log ``reply`` when it refuses the request (its ``reject`` reason)."""
        if reply.reject:
            self.reject(peer, reply.reject, reply.log or _text(reply.body))

    def over_budget(self) -> bool:
        """True when the request bodies held pass ``body_budget``."""
        return 0 < self.settings.body_budget < self.inflight

    def busy(self, peer: str, *, pending: bool) -> Reply:
        """Count and log a request refused because the server is at its limits."""
        if pending:
            why = (
                f"{len(self.handlers)} requests are being stored, the most"
                " http_server.ingress_queue_event_limit allows"
            )
        else:
            why = (
                f"{self.inflight} bytes of request bodies in flight, more than"
                " http_server.ingress_queue_byte_limit allows"
            )
        self.reject(peer, "busy", f"answered 503: {why}")
        reply = self.handler.busy()
        reply.reject = None  # counted here
        return reply

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(self._guarded(coro))
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)

    async def _guarded(self, coro: Awaitable[None]) -> None:
        """Run ``coro``; an unexpected error is one summarised line, never a traceback."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log_rejects.log(
                "error",
                "answering a request failed: %s: %s",
                type(exc).__name__,
                exc,
                level=logging.ERROR,
            )
            self.log.debug("answering a request failed", exc_info=True)

    async def respond(self, request: Request) -> Reply:
        """The handler's reply; an unexpected error is a 500 with one log line."""
        try:
            reply = await self.handler.handle(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log_rejects.log(
                "error",
                "request %s %s from %s failed: %s: %s",
                request.method,
                request.path,
                request.peer,
                type(exc).__name__,
                exc,
                level=logging.ERROR,
            )
            self.log.debug("handler error", exc_info=True)
            return Reply(500, b"error: internal error\n")
        self._count_refusal(request.peer, reply)
        return reply


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip().removeprefix("error: ")[:200]


def _headers(raw: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _declared_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "").partition(",")[0].strip()
    return int(value) if value.isdigit() else None


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.x request by request, or an HTTP/2 session."""

    __slots__ = (
        "body",
        "buf",
        "conn",
        "deadline",
        "drain",
        "eof",
        "first",
        "h2",
        "held",
        "peer",
        "phase",
        "request",
        "server",
        "transport",
    )

    def __init__(self, server: HttpServer, peer: str) -> None:
        self.server = server
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.buf: bytearray | None = None  #: a request head being gathered
        self.conn: h11.Connection | None = None  #: the request being read or answered
        self.request: Request | None = None
        self.body: bytearray | None = None
        self.h2: _H2Session | None = None
        self.phase = "idle"  #: idle, head, body, handler, drain
        self.deadline = 0.0
        self.drain = 0
        self.eof = False
        self.held = 0  #: body bytes of the current request counted in server.inflight
        self.first = True  #: no request yet (the HTTP/2 preface may come)

    def __repr__(self) -> str:
        proto = "h2" if self.h2 is not None else "http/1.1"
        return f"<_Connection {self.peer} {proto} {self.phase} held={self.held}>"

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)
        self._idle()
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.h2 = _H2Session(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.server.stats.closed()
        if self.h2 is not None:
            self.h2.lost()
        self.transport = None
        self.buf = self.body = None
        self.conn = None

    def data_received(self, data: bytes) -> None:
        try:
            self._received(data)
        except Exception as exc:  # a bug must cost this connection only, never a traceback
            self.server.reject(
                self.peer, "malformed", f"closed on an unexpected {type(exc).__name__}: {exc}"
            )
            self.server.log.debug("unexpected error on a connection", exc_info=True)
            self.abort()

    def _received(self, data: bytes) -> None:
        if self.phase == "closed":
            return
        if self.phase == "drain":
            self.drain -= len(data)
            if self.drain <= 0:
                self.abort()
            return
        if self.h2 is not None:
            self.h2.data_received(data)
            return
        if self.conn is None:
            self._head(data)
        else:
            self.conn.receive_data(data)
            self._process()

    def eof_received(self) -> bool | None:
        if self.h2 is None and self.phase == "handler":
            self.eof = True  # half-closed after its request: answer, then close
            # (TLS cannot half-close: there the connection ends with the answer unsent)
            return self.transport is None or self.transport.get_extra_info("sslcontext") is None
        if self.conn is not None and self.phase in ("head", "body"):
            self.conn.receive_data(b"")
            self._process()
        return None

    # -------------------------------------------------------------- HTTP/1.x

    def _head(self, data: bytes) -> None:
        """Gather a request head; hand it, normalised, to a fresh h11 connection."""
        if self.buf is None:
            self.buf = bytearray()
            self._expect("head")
        self.buf += data
        buf = self.buf
        if self.first and self.server.settings.http2:
            if buf.startswith(H2_PREFACE):
                self.buf = None
                self.h2 = _H2Session(self)
                self.h2.data_received(bytes(buf))
                return
            if H2_PREFACE.startswith(buf):
                return  # maybe the preface: wait for more
        match = _HEAD_END.search(buf)
        if match is None:
            if len(buf) > MAX_HEAD:
                self.fail(431, "malformed", "request head larger than 64 KiB")
            return
        end = match.end()
        head = _BLANK_TE.sub(b"", bytes(buf[:end]))
        rest = bytes(buf[end:])
        self.buf = None
        self.first = False
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.conn.receive_data(head + rest)
        self._process()

    def _process(self) -> None:
        conn = self.conn
        while conn is not None and conn is self.conn and self.phase in ("head", "body"):
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                message = str(exc).split(": bytearray(", 1)[0][:120]  # no raw bytes in logs
                if "Host" in message:
                    message = "missing host header"
                self.fail(status, "malformed", message)
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Request):
                self._on_request(conn, event)
            elif isinstance(event, h11.Data):
                assert self.body is not None
                self.body += event.data
                self.held += len(event.data)
                self.server.inflight += len(event.data)
                if len(self.body) > self.server.settings.max_body:
                    self._too_large()
                elif self.server.over_budget():
                    self._abort_with(self.server.busy(self.peer, pending=False))
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
            else:  # PAUSED: a new request after a close was asked for
                return

    def _on_request(self, conn: h11.Connection, event: h11.Request) -> None:
        headers = _headers(event.headers)
        version = event.http_version.decode("ascii", "replace")
        self.request = Request(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("latin-1"),
            headers=headers,
            peer=self.peer,
            version=version,
        )
        self.body = bytearray()
        self._expect("body")
        declared = _declared_length(headers)
        if declared is not None and declared > self.server.settings.max_body:
            self._too_large()
            return
        early = self.server.check(self.request)
        if early is not None:
            self._abort_with(early, pending=declared != 0)
            return
        if conn.they_are_waiting_for_100_continue:
            self.transport_write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))

    def _too_large(self) -> None:
        self._abort_with(self.server.too_large(self.peer, self.request))

    def _dispatch(self) -> None:
        request, body = self.request, self.body
        assert request is not None and body is not None
        request.body = bytes(body)
        self.body = None
        if 0 < self.server.settings.max_pending <= len(self.server.handlers):
            request.body = b""
            self._release()
            self._send(self.server.busy(self.peer, pending=True))
            return
        self.phase = "handler"
        self.deadline = 0.0
        if self.transport is not None:
            self.transport.pause_reading()
        self.server.spawn(self._answer(request))

    async def _answer(self, request: Request) -> None:
        reply = await self.server.respond(request)
        self._release()
        self._send(reply)

    def _release(self) -> None:
        """The current request's body no longer counts in the server's in-flight bytes."""
        self.server.inflight -= self.held
        self.held = 0

    def _send(self, reply: Reply) -> None:
        """Write ``reply`` through h11; keep the connection for the next request or close."""
        conn, request = self.conn, self.request
        if conn is None or self.transport is None or self.transport.is_closing():
            return
        headers = list(reply.headers)
        keep = self.server.settings.keepalive
        if not keep:
            headers.append(("Connection", "close"))
        no_body = reply.status in (204, 304) or (request is not None and request.method == "HEAD")
        if not no_body:
            headers.append(("Content-Length", str(len(reply.body))))
        try:
            data = conn.send(
                h11.Response(
                    status_code=reply.status,
                    headers=headers,
                    reason=_reason_phrase(reply.status).encode(),
                )
            )
            if reply.body and not no_body:
                data = (data or b"") + (conn.send(h11.Data(data=reply.body)) or b"")
            data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            self.abort()
            return
        self.transport_write(data)
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and not self.eof:
            rest, closed = conn.trailing_data
            self.conn = None
            self.request = None
            self._idle()
            self.transport.resume_reading()
            if rest:
                self._head(bytes(rest))
            elif closed:
                self.close()
        else:
            self.close()

    def _abort_with(self, reply: Reply, *, pending: bool = True) -> None:
        """Answer ``reply`` on a request whose body stays unread, then close."""
        self._release()
        self.transport_write(_raw_response(reply.status, reply.body, reply.headers))
        self.conn = None
        self.body = None
        if not pending:
            self.close()
            return
        self.phase = "drain"
        self.drain = DRAIN_LIMIT
        self.deadline = time.monotonic() + 1.0

    def fail(self, status: int, reason: str, message: str) -> None:
        """Refuse a malformed or slow request with ``status`` and close."""
        self.server.reject(self.peer, reason, message)
        body = f"error: {message}\n".encode()
        self.transport_write(_raw_response(status, body, [("Content-Type", "text/plain")]))
        self.close()

    # -------------------------------------------------------------- timers, closing

    def _idle(self) -> None:
        self.phase = "idle"
        t = self.server.settings.idle_timeout
        self.deadline = time.monotonic() + t if t > 0 else 0.0

    def _expect(self, phase: str) -> None:
        self.phase = phase
        t = self.server.settings.io_timeout
        self.deadline = time.monotonic() + t if t > 0 else 0.0

    def timed_out(self) -> None:
        if self.h2 is not None:
            self.h2.timed_out()
        elif self.phase in ("head", "body"):
            what = "request head" if self.phase == "head" else "request body"
            self.fail(
                408,
                "timeout",
                f"{what} not received within net.io_timeout ({self.server.settings.io_timeout:g}s)",
            )
        elif self.phase == "drain":
            self.abort()
        elif self.phase == "idle":
            self.close()

    def transport_write(self, data: bytes | None) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.deadline = 0.0
        self.phase = "closed"
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.deadline = 0.0
        self.phase = "closed"
        if self.transport is not None:
            self.transport.abort()


@dataclass(slots=True)
class _Stream:
    request: Request
    body: bytearray = field(default_factory=bytearray)
    started: float = field(default_factory=time.monotonic)
    done: bool = False  #: the request is whole (handler running or answered)
    held: int = 0  #: body bytes counted in the server's in-flight bytes


class _H2Session:
    """An HTTP/2 session (h2) on a :class:`_Connection`."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.server = conn.server
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: H2_MAX_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEAD,
            },
        )
        self.h2.initiate_connection()
        self.streams: dict[int, _Stream] = {}
        #: refused streams whose body is drained (answered already): bytes left, since when
        self.refused: dict[int, tuple[int, float]] = {}
        self.window: asyncio.Event | None = None
        conn.first = False
        self.flush()

    def __repr__(self) -> str:
        return (
            f"<_H2Session {self.conn.peer} streams={len(self.streams)} refused={len(self.refused)}>"
        )

    def flush(self) -> None:
        self.conn.transport_write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.server.reject(self.conn.peer, "malformed", f"HTTP/2 protocol error: {exc}")
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(error_code=h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self.flush()
            self.conn.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._request(event)
            elif isinstance(event, h2.events.DataReceived):
                self._data(event)
            elif isinstance(event, h2.events.StreamEnded):
                self._ended(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._drop(event.stream_id)
                self.refused.pop(event.stream_id, None)
            elif isinstance(event, h2.events.WindowUpdated):
                if self.window is not None:
                    self.window.set()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.flush()
                self.conn.close()
                return
        self.flush()
        self._deadline()

    def _request(self, event: h2.events.RequestReceived) -> None:
        headers = _headers(event.headers or [])
        sid = event.stream_id
        if "host" not in headers and ":authority" in headers:
            headers["host"] = headers[":authority"]
        request = Request(
            method=headers.get(":method", "GET"),
            target=headers.get(":path", "/"),
            headers={k: v for k, v in headers.items() if not k.startswith(":")},
            peer=self.conn.peer,
            version="2",
        )
        self.streams[sid] = _Stream(request)
        declared = _declared_length(headers)
        if declared is not None and declared > self.server.settings.max_body:
            self._too_large(sid)
            return
        early = self.server.check(request)
        if early is not None:
            self._refuse(sid, early)

    def _data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.h2.acknowledge_received_data(event.flow_controlled_length, sid)
        if sid in self.refused:
            left, since = self.refused[sid]
            left -= event.flow_controlled_length
            self.refused[sid] = (left, since)
            if left <= 0:  # enough read to let the client see the answer: cut it
                del self.refused[sid]
                with contextlib.suppress(h2.exceptions.H2Error):
                    self.h2.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            return
        stream = self.streams.get(sid)
        if stream is None or stream.done:
            return
        data = event.data or b""
        stream.body += data
        stream.held += len(data)
        self.server.inflight += len(data)
        if len(stream.body) > self.server.settings.max_body:
            self._too_large(sid)
        elif self.server.over_budget():
            self._refuse(sid, self.server.busy(self.conn.peer, pending=False))

    def _drop(self, sid: int) -> _Stream | None:
        """Forget a stream; its body no longer counts in the server's in-flight bytes."""
        stream = self.streams.pop(sid, None)
        if stream is not None:
            self.server.inflight -= stream.held
            stream.held = 0
        return stream

    def _too_large(self, sid: int) -> None:
        stream = self.streams.get(sid)
        request = stream.request if stream else None
        self._refuse(sid, self.server.too_large(self.conn.peer, request))

    def _refuse(self, sid: int, reply: Reply) -> None:
        """Answer ``reply`` at once; the body is drained up to :data:`DRAIN_LIMIT` bytes
        (so that the client reads the answer), then the stream is reset."""
        self._drop(sid)
        self.refused[sid] = (DRAIN_LIMIT, time.monotonic())
        try:
            self._headers(sid, reply, end=not reply.body)
            if reply.body:
                size = min(
                    len(reply.body),
                    self.h2.local_flow_control_window(sid),
                    self.h2.max_outbound_frame_size,
                )
                self.h2.send_data(sid, reply.body[:size], end_stream=True)
        except h2.exceptions.H2Error:
            pass
        self.flush()

    def _ended(self, sid: int) -> None:
        self.refused.pop(sid, None)
        stream = self.streams.get(sid)
        if stream is None or stream.done:
            return
        stream.done = True
        stream.request.body = bytes(stream.body)
        stream.body = bytearray()
        if 0 < self.server.settings.max_pending <= len(self.server.handlers):
            self._refuse(sid, self.server.busy(self.conn.peer, pending=True))
            self.refused.pop(sid, None)  # the client sent it all: nothing to drain
            return
        self.server.spawn(self._answer(sid, stream.request))

    async def _answer(self, sid: int, request: Request) -> None:
        reply = await self.server.respond(request)
        if self._drop(sid) is None or self.conn.transport is None:
            return  # reset by the client, or the connection is gone
        no_body = reply.status in (204, 304) or request.method == "HEAD"
        body = b"" if no_body else reply.body
        try:
            self._headers(sid, reply, end=not body)
            self.flush()
            while body:
                window = min(
                    self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size
                )
                if window <= 0:
                    self.window = asyncio.Event()
                    await self.window.wait()
                    continue
                chunk, body = body[:window], body[window:]
                self.h2.send_data(sid, chunk, end_stream=not body)
                self.flush()
        except h2.exceptions.H2Error:
            return
        finally:
            self._deadline()

    def _headers(self, sid: int, reply: Reply, *, end: bool) -> None:
        headers = [(":status", str(reply.status))]
        headers += [(k.lower(), v) for k, v in reply.headers if k.lower() != "connection"]
        if not end:
            headers.append(("content-length", str(len(reply.body))))
        self.h2.send_headers(sid, headers, end_stream=end)

    def _deadline(self) -> None:
        receiving = [s.started for s in self.streams.values() if not s.done]
        receiving += [since for _, since in self.refused.values()]
        if receiving:
            t = self.server.settings.io_timeout
            self.conn.phase = "body"
            self.conn.deadline = min(receiving) + t if t > 0 else 0.0
        elif self.streams:
            self.conn.phase = "handler"
            self.conn.deadline = 0.0
        else:
            self.conn._idle()

    def timed_out(self) -> None:
        if self.conn.phase == "body":
            self.server.reject(
                self.conn.peer,
                "timeout",
                f"HTTP/2 request not received within net.io_timeout"
                f" ({self.server.settings.io_timeout:g}s)",
            )
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.close_connection()
        self.flush()
        self.conn.close()

    def lost(self) -> None:
        for sid in list(self.streams):
            self._drop(sid)
        if self.window is not None:
            self.window.set()
