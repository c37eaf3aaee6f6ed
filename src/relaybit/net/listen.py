"""Server-side socket helpers shared by the server inputs (forward, http, tcp, syslog).

Listening sockets for every address a host resolves to, the accept errors to
retry or skip, and how a peer and a failed TLS handshake are named in logs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import socket
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable
from typing import Any

from relaybit.net.limits import ConnectionStats

ACCEPT_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_SKIP = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR})
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")
CLOSED_BETWEEN_FRAMES = (ConnectionResetError, ConnectionAbortedError, ssl_module.SSLEOFError)


def listen_sockets(
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


async def accepted(
    listener: socket.socket, log: logging.Logger, *, prefix: str = "", what: str = "clients"
) -> AsyncIterator[tuple[socket.socket, Any]]:
    """``(socket, address)`` of each client accepted on ``listener``, until cancelled.

    A client gone before it was accepted is skipped; out of descriptors or memory,
    the loop logs a warning and tries again a second later; any other error is
    logged and ends it (``prefix`` starts those lines, ``what`` names the clients).
    """
    loop = asyncio.get_running_loop()
    while True:
        try:
            pair = await loop.sock_accept(listener)
        except OSError as exc:
            if exc.errno in ACCEPT_SKIP:  # that client is gone already
                continue
            if exc.errno in ACCEPT_RETRY:  # out of descriptors or memory: back off
                log.warning("%saccept failed: %s; retrying in 1s", prefix, exc)
                await asyncio.sleep(1.0)
                continue
            log.error("%sno longer accepting %s: %s", prefix, what, exc)
            return
        yield pair


async def serve_tls(
    sock: socket.socket,
    protocol: Callable[[], asyncio.BaseProtocol],
    context: ssl_module.SSLContext,
    timeout: float,
    stats: ConnectionStats,
) -> Exception | None:
    """Do the TLS handshake of an accepted (and counted) client, within ``timeout``
    seconds (0: none); ``protocol()`` then serves it.  When the handshake fails or is
    cancelled the socket is closed and counted closed in ``stats``; the failure is
    returned (None: served), a cancellation raised."""
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_accepted_socket(
            protocol, sock, ssl=context, ssl_handshake_timeout=timeout or None
        )
    except asyncio.CancelledError:
        sock.close()
        stats.closed()
        raise
    except Exception as exc:  # ssl.SSLError, reset, handshake timeout
        sock.close()
        stats.closed()
        return exc
    return None


def handshake_failure(exc: Exception, time_limit: str) -> str:
    """Why a server-side TLS handshake failed, for a log line: ``no TLS handshake
    within <time_limit>`` when it ran out of time, else the reason and a hint."""
    if handshake_timed_out(exc):
        return f"no TLS handshake within {time_limit}"
    return f"{tls_failure_reason(exc)} ({tls_hint(exc)})"


def handshake_timed_out(exc: BaseException) -> bool:
    """True when a server-side TLS handshake ended on its time limit: a TimeoutError
    (``asyncio.timeout``), or the ConnectionAbortedError saying so with which asyncio
    and uvloop end one past ``ssl_handshake_timeout``."""
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, ConnectionAbortedError) and "handshake is taking longer" in str(exc)
    )


def tls_failure_reason(exc: Exception) -> str:
    """What went wrong in a failed server-side TLS handshake, never an empty string."""
    if isinstance(exc, ssl_module.SSLError):
        return _SSL_SOURCE.sub("", str(exc)) or type(exc).__name__
    if isinstance(exc, ConnectionError) and not str(exc):
        return "the client closed the connection during the handshake"
    return str(exc) or type(exc).__name__


def address_name(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr or "?")


def tls_hint(exc: BaseException) -> str:
    text = str(exc).upper()
    if "CERTIFICATE" in text:
        return "client certificate not accepted: check the client's tls.crt_file and tls.ca_file"
    return "is the client using TLS?"


def peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == getattr(socket, "AF_UNIX", None):
        return f"unix:{sock.getsockname() or '?'}"
    return str(peer or "?")
