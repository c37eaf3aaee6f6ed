"""HTTP connections for the Upstream: one aiohttp session per node address.

The Upstream's connector opens an :class:`HttpConnection` for one resolved
address of a node; it owns an aiohttp ``ClientSession`` whose ``TCPConnector``
is that address's connection pool (keepalive, limits, source address, TLS).
Requests go to the resolved address while ``Host`` and TLS SNI carry the node's
host name (or ``tls.vhost``).  Transport failures become :class:`DeliveryError`
with a stable ``kind``, so the Upstream fails over; HTTP statuses are mapped by
:func:`raise_for_status`.

Every request has two deadlines: ``response_timeout`` for the whole exchange
(sending the body, the status line, the whole body: ``http.response_timeout``
of the http output, ``net.io_timeout`` of es) and ``read_idle_timeout``
between two reads (``http.read_idle_timeout``, else ``net.io_timeout``).  A
timeout is a DeliveryError: the Upstream fails over, a flush never hangs.

The status line decides delivery: when a 2xx status line arrived and the body
after it is malformed (a chunk-size line the parser rejects, a broken
trailer), the response comes back with ``malformed`` set instead of an error,
so the caller does not send the data again.  aiohttp reports such a parse error
without the status it parsed; the connection's protocol
(:class:`StatusSniffingHandler`) keeps the status line of the response it
reads, and the request finds it through a context variable.

A request that fails or times out **aborts** its sockets (TCP reset): aiohttp's
own close is graceful, and a transport still holding an unsent body would stay
open to a receiver that never reads, with the body buffered, after every
failed flush.  Bodies over 1 MiB go out in one write (:class:`WholeBody`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import socket
import ssl
import struct
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection as AiohttpConnection
from aiohttp.tracing import Trace
from multidict import CIMultiDict

from relaybit.errors import ConfigError, DeliveryError, PermanentDeliveryError
from relaybit.upstream.node import NetSettings, Node, TLSSettings
from relaybit.upstream.tls import client_context

#: Bytes of a response body kept for logs and errors.
BODY_EXCERPT = 512

#: Bodies above this size go out as a :class:`WholeBody` (aiohttp warns about raw
#: bytes over 1 MiB).
LARGE_BODY = 1 << 20

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status, headers and body of one response.

    ``malformed`` says why the body after a 2xx status line could not be read
    (then ``body`` is what was read, maybe nothing): delivered all the same.
    """

    status: int
    body: bytes
    headers: Mapping[str, str]
    malformed: str | None = None

    def excerpt(self) -> str:
        """The first 512 bytes of the body, as text."""
        return self.body[:BODY_EXCERPT].decode("utf-8", "replace")


def raise_for_status(response: HttpResponse) -> None:
    """2xx passes; 429 and 5xx raise DeliveryError (fail over); other codes are permanent."""
    status = response.status
    if 200 <= status < 300:
        return
    if status == 429:
        raise DeliveryError("http_429", f"HTTP 429: {response.excerpt()}")
    if status >= 500:
        raise DeliveryError("http_5xx", f"HTTP {status}: {response.excerpt()}")
    raise PermanentDeliveryError("http_4xx", f"HTTP {status}: {response.excerpt()}")


def _timed_out(exc: BaseException, io_timeout: float | None) -> str:
    if isinstance(exc, aiohttp.ServerTimeoutError) or io_timeout is None:
        return f"timed out ({exc})" if str(exc) else "timed out"
    return f"no complete response within {io_timeout:g}s (peer not reading or not answering)"


def _host_literal(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def reset_transport(transport: asyncio.Transport) -> None:
    """Close ``transport`` at once, dropping unsent data, with a TCP reset to the peer."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class StatusSniffingHandler(ResponseHandler):
    """aiohttp's connection protocol, keeping the status code of the response it reads.

    aiohttp raises a parse error of a response as a bare 400 without the status
    line it parsed; ``status_seen`` is that status (None before a status line).
    """

    status_seen: int | None = None

    def set_response_params(self, **kwargs: Any) -> None:
        self.status_seen = None  # a new request on this connection
        super().set_response_params(**kwargs)

    def data_received(self, data: bytes) -> None:
        status = self.status_seen
        if status is None or status < 200:  # a status line yet to come (or after a 1xx)
            if data[:7] == b"HTTP/1.":
                status = self._status_at(data, 0, status)
            after = data.find(b"\r\n\r\nHTTP/1.") if status is not None else -1
            while status is not None and status < 200 and after >= 0:
                status = self._status_at(data, after + 4, status)
                after = data.find(b"\r\n\r\nHTTP/1.", after + 4)
            self.status_seen = status
        super().data_received(data)

    @staticmethod
    def _status_at(data: bytes, start: int, default: int | None) -> int | None:
        try:
            return int(data[start + 9 : start + 12])
        except ValueError:
            return default


#: the protocol of the connection the current task's request went out on
_PROTOCOL: contextvars.ContextVar[StatusSniffingHandler | None] = contextvars.ContextVar(
    "relaybit_http_protocol", default=None
)


class AbortableConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that remembers the transports it hands out, to reset them.

    aiohttp closes a failed request's connection gracefully: with an unsent body
    in its buffer the socket stays open until the receiver reads it, maybe never.
    :meth:`reset` aborts every transport this connector opened that is still open.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._transports: set[asyncio.Transport] = set()
        self._factory = functools.partial(StatusSniffingHandler, loop=self._loop)  # type: ignore[assignment]

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> AiohttpConnection:
        conn = await super().connect(req, traces, timeout)
        protocol = conn.protocol
        # seen by the request's task after this await (same context)
        _PROTOCOL.set(protocol if isinstance(protocol, StatusSniffingHandler) else None)
        transport = conn.transport
        if transport is not None:
            self._forget_closed()
            self._transports.add(transport)
        return conn

    @property
    def open_transports(self) -> int:
        """Transports opened here that may still hold a socket."""
        self._forget_closed()
        return len(self._transports)

    def _forget_closed(self) -> None:
        # a transport closed with nothing left to send has let its socket go
        self._transports = {
            t for t in self._transports if not (t.is_closing() and t.get_write_buffer_size() == 0)
        }

    def reset_unsent(self) -> None:
        """Reset the transports aiohttp is closing with data still unsent.

        A receiver that answers before reading the whole body (413 ...) and stops
        reading would otherwise hold them open.
        """
        stuck = {t for t in self._transports if t.is_closing() and t.get_write_buffer_size()}
        self._transports -= stuck
        for transport in stuck:
            reset_transport(transport)

    def reset(self) -> None:
        """Abort (TCP reset) every transport still open, discarding unsent data."""
        transports, self._transports = self._transports, set()
        for transport in transports:
            reset_transport(transport)

    def __repr__(self) -> str:
        return f"<AbortableConnector transports={len(self._transports)}>"


class WholeBody(aiohttp.BytesPayload):
    """A large body handed to the transport in one write.

    aiohttp warns about raw bytes over 1 MiB and suggests a ``BytesIOPayload``,
    which writes 64 KiB per turn of the event loop (a 2 MB bulk body: 30 turns
    and copies).  The transport sends what the socket takes and keeps the rest
    without blocking; a receiver that stops reading is bounded by the request's
    deadlines and the connection is then reset (:func:`reset_transport`).
    """

    def __init__(self, value: bytes) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            super().__init__(value)


def request_body(data: bytes | None) -> bytes | WholeBody | None:
    """``data`` as aiohttp should send it: a large body as one :class:`WholeBody`."""
    if data is not None and len(data) > LARGE_BODY:
        return WholeBody(data)
    return data


class HttpConnection:
    """An aiohttp session bound to one address of one node (its connection pool)."""

    def __init__(
        self,
        node: Node,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        net: NetSettings,
        io_timeout: float | None = None,
        read_idle_timeout: float | None = None,
    ) -> None:
        """``io_timeout``: the whole exchange (None: none); ``read_idle_timeout``:
        between two reads (None: ``io_timeout``)."""
        self.node = node
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._net = net
        scheme = "https" if ssl_context is not None else "http"
        self.base_url = f"{scheme}://{_host_literal(host)}:{port}"
        #: through a proxy the request names the node's host, for the proxy to resolve
        self.proxy_base_url = f"{scheme}://{_host_literal(node.host)}:{node.port}"
        default_port = 443 if ssl_context is not None else 80
        self.host_header = (
            node.host if node.port == default_port else f"{_host_literal(node.host)}:{node.port}"
        )
        self.server_hostname = node.tls.vhost or node.host
        local = (net.source_address, 0) if net.source_address else None
        # an idle timeout of 0 = idle sockets never expire, as in the Upstream's pool
        idle = net.keepalive_idle_timeout if net.keepalive else 0
        self._connector = connector = AbortableConnector(
            limit=net.max_worker_connections,
            keepalive_timeout=idle if idle > 0 else None,
            force_close=not net.keepalive,
            local_addr=local,
            ssl=ssl_context if ssl_context is not None else False,
            use_dns_cache=False,
        )
        read_idle: float | None = read_idle_timeout if read_idle_timeout else io_timeout
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=net.connect_timeout, sock_read=read_idle or None
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=True
        )
        self.requests = 0
        self._broken = False
        self._io_timeout = io_timeout

    def is_usable(self) -> bool:
        """False once closed, broken, or past ``net.keepalive_max_recycle`` requests."""
        recycle = self._net.keepalive_max_recycle
        if recycle and self.requests >= recycle:
            return False
        return not (self._broken or self._session.closed)

    def abort(self) -> None:
        """Mark broken and reset every socket at once (unsent data is dropped)."""
        self._broken = True
        self._connector.reset()

    @property
    def open_transports(self) -> int:
        """Sockets of this connection that are (still) open."""
        return self._connector.open_transports

    async def aclose(self) -> None:
        """Close the session; a broken connection's sockets are reset, not drained."""
        if self._broken:
            self._connector.reset()
        if not self._session.closed:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole response; DeliveryError on transport failure.

        ``proxy`` (``http://host:port``) sends it through that HTTP proxy.
        """
        all_headers = CIMultiDict(headers or {})
        if "Host" not in all_headers:
            all_headers["Host"] = self.host_header
        base = self.proxy_base_url if proxy else self.base_url
        url = base + (path if path.startswith("/") else "/" + path)
        self.requests += 1
        try:
            response = await self._request(method, url, data, all_headers, proxy)
        except BaseException:  # timeout, transport error, cancelled: reset, never drain
            self.abort()
            raise
        self._connector.reset_unsent()
        return response

    async def _request(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: CIMultiDict[str],
        proxy: str | None = None,
    ) -> HttpResponse:
        try:
            # aiohttp's sock_read does not bound sending the body: a receiver that
            # accepts but never reads would hold the flush forever
            async with (
                asyncio.timeout(self._io_timeout),
                self._session.request(
                    method,
                    url,
                    data=request_body(data),
                    headers=headers,
                    server_hostname=self.server_hostname if self._ssl is not None else None,
                    allow_redirects=False,
                    proxy=proxy,
                ) as resp,
            ):
                try:
                    body = await resp.read()
                except aiohttp.ClientPayloadError as exc:
                    if not 200 <= resp.status < 300:
                        raise
                    return HttpResponse(resp.status, b"", dict(resp.headers), malformed=str(exc))
                return HttpResponse(resp.status, body, dict(resp.headers))
        except aiohttp.ClientResponseError as exc:
            # the parser rejected the response: after a 2xx status line it is delivered
            protocol = _PROTOCOL.get()
            status = protocol.status_seen if protocol is not None else None
            if status is not None and 200 <= status < 300:
                return HttpResponse(status, b"", {}, malformed=exc.message)
            raise DeliveryError(
                "protocol",
                f"{self.node.name} ({self.host}:{self.port}): malformed response: {exc.message}",
            ) from exc
        except aiohttp.ClientSSLError as exc:
            raise DeliveryError(
                "tls", f"{self.node.name} ({self.host}:{self.port}): {exc}"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise DeliveryError(
                "connect", f"{self.node.name} ({self.host}:{self.port}): {exc.strerror or exc}"
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise DeliveryError(
                "timeout",
                f"{self.node.name} ({self.host}:{self.port}): connect timed out"
                f" after {self._net.connect_timeout:g}s",
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise DeliveryError(
                "timeout",
                f"{self.node.name} ({self.host}:{self.port}): {_timed_out(exc, self._io_timeout)}",
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(
                "write", f"{self.node.name} ({self.host}:{self.port}): {exc!r}"
            ) from exc

    def __repr__(self) -> str:
        state = "usable" if self.is_usable() else "closed"
        return f"<HttpConnection {self.node.name} {self.base_url} requests={self.requests} {state}>"


def client_ssl_context(tls: TLSSettings, base_dir: Path) -> ssl.SSLContext | None:
    """A client SSL context of ``tls.*`` settings (None when ``tls`` is off)."""
    return client_context(tls, base_dir)


SSLFor = Callable[[Node], ssl.SSLContext | None]


class HttpConnector:
    """The Upstream connector of the HTTP-based outputs: ``await connector(node, host, port)``.

    ``ssl_for(node)`` gives the node's client SSL context (None for plain HTTP).
    Opening is lazy (aiohttp connects on the first request); connection failures
    surface from :meth:`HttpConnection.request` as ``DeliveryError('connect')``.
    """

    def __init__(
        self,
        ssl_for: SSLFor,
        net: NetSettings,
        *,
        io_timeout: float | None = None,
        read_idle_timeout: float | None = None,
    ) -> None:
        self._ssl_for = ssl_for
        self._net = net
        self._io_timeout = io_timeout
        self._read_idle_timeout = read_idle_timeout

    async def __call__(self, node: Node, host: str, port: int) -> HttpConnection:
        try:
            context = self._ssl_for(node)
        except (OSError, ssl.SSLError, ValueError, ConfigError) as exc:
            raise DeliveryError("tls", f"{node.name}: cannot set up TLS: {exc}") from exc
        return HttpConnection(
            node,
            host,
            port,
            ssl_context=context,
            net=self._net,
            io_timeout=self._io_timeout,
            read_idle_timeout=self._read_idle_timeout,
        )

    def __repr__(self) -> str:
        return f"<HttpConnector net={self._net!r}>"


async def probe_get(path: str, node: Node, connection: HttpConnection) -> None:
    """Active health probe: ``GET path`` must answer 2xx (else DeliveryError)."""
    del node
    response = await connection.request("GET", path)
    if not 200 <= response.status < 300:
        raise DeliveryError("probe", f"GET {path}: HTTP {response.status}")
