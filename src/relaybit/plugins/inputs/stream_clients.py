"""The connections a stream-socket input (tcp, syslog tcp/unix_tcp) serves.

Each connection runs in its own task (asyncio's ``start_server`` callback);
:meth:`StreamClients.serving` tracks that task, logs a connection error at
debug level instead of raising it, and closes the writer however the
connection ends; :meth:`StreamClients.cancel` ends them all on stop.

Against abuse (:data:`STREAM_LIMIT_OPTIONS`): over ``max_connections`` a new
connection is closed at once (one log line per burst); :meth:`Session.read`
closes a connection whose record (line, JSON value, syslog message) is still
incomplete ``frame_timeout`` seconds after its first byte (``timeout``), or
that sent nothing for ``net.io_timeout``; malformed input is counted and
logged once per connection through a :class:`SummarisedLog`, so a thousand
bad clients write a few lines, not a thousand.  The counters are the
input's ``metrics()`` (:class:`ConnectionStats`).

The keys every TCP server input shares are here too: the abuse limits
(:func:`connection_limit_options`, also the forward input's) and the server
side of the TLS map (:data:`SERVER_TLS_OPTIONS`, :func:`tls_server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable

from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.net.limits import (
    DEFAULT_MAX_CONNECTIONS,
    ConnectionStats,
    SummarisedLog,
    refusal_log,
)
from relaybit.net.listen import address_name, handshake_failure
from relaybit.plugins.base import InputContext
from relaybit.upstream.node import TLS_OPTIONS, TLSSettings
from relaybit.upstream.tls import server_context

#: Fluent Bit's ``tls.verify_client_cert`` of a TLS server input (forward, http, tcp, syslog).
VERIFY_CLIENT_CERT = Option(
    "tls.verify_client_cert",
    "bool",
    None,
    "Require a client certificate signed by tls.ca_file (default: tls.verify with a CA given)",
)

#: TLS keys of a TCP server input (forward, tcp, syslog): Fluent Bit's TLS map
SERVER_TLS_OPTIONS = ConfigMap((VERIFY_CLIENT_CERT,)) + TLS_OPTIONS


def client_cert_required(opts: Options) -> bool | None:
    """``tls.verify_client_cert`` when written, else None (``tls.verify`` with a CA decides)."""
    if opts.is_set("tls.verify_client_cert"):
        return opts.bool("tls.verify_client_cert")
    return None


def tls_server(ctx: InputContext) -> ssl_module.SSLContext | None:
    """The TLS context of a server input's ``tls.*`` keys (None when ``tls`` is off)."""
    return server_context(
        TLSSettings.from_options(ctx.options),
        ctx.config_dir,
        require_client_cert=client_cert_required(ctx.options),
    )


def connection_limit_options(unit: str) -> ConfigMap:
    """``max_connections``, ``frame_timeout`` and ``net.io_timeout`` of a server input
    against abuse; ``unit`` names what ``frame_timeout`` bounds (a frame, a record)."""
    return ConfigMap(
        (
            Option(
                "max_connections",
                "int",
                DEFAULT_MAX_CONNECTIONS,
                "relaybit: most concurrent connections; a new one over it is closed at once"
                " (one log line per burst), existing clients are served. 0 = unlimited",
                minimum=0,
            ),
            Option(
                "frame_timeout",
                "time",
                30.0,
                f"relaybit: time a {unit} may take from its first byte to its last before the"
                " connection is closed and counted (slow clients); 0 = no limit",
            ),
            Option(
                "net.io_timeout",
                "time",
                0.0,
                "Close a connection that sends nothing for this long (0 = never)",
            ),
        )
    )


#: Keys of a stream server input against abuse (tcp, syslog in tcp and unix_tcp modes).
STREAM_LIMIT_OPTIONS = connection_limit_options("record")


class _Timeout(Exception):
    """A connection's read passed ``frame_timeout`` (``frame``) or ``net.io_timeout``."""

    def __init__(self, message: str, *, frame: bool) -> None:
        super().__init__(message)
        self.frame = frame


class Session:
    """One connection as :meth:`StreamClients.serving` hands it to the input."""

    __slots__ = ("_clients", "_started", "address", "admitted", "warned")

    def __init__(self, clients: StreamClients, address: str | None, admitted: bool) -> None:
        self._clients = clients
        self.address = address
        self.admitted = admitted  #: False: refused over max_connections (reads end at once)
        self.warned = False
        self._started: float | None = None  #: when the incomplete record's first byte came

    async def read(self, reader: asyncio.StreamReader, size: int, *, pending: bool) -> bytes:
        """``reader.read(size)`` within the input's timeouts; ``pending``: a record is
        incomplete (its bytes are buffered).  A refused connection reads end of stream."""
        if not self.admitted:
            return b""
        clients = self._clients
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not pending:
            self._started = None
        elif self._started is None:
            self._started = now
        deadlines: list[tuple[float, bool]] = []
        if clients.io_timeout > 0:
            deadlines.append((now + clients.io_timeout, False))
        if self._started is not None and clients.frame_timeout > 0:
            deadlines.append((self._started + clients.frame_timeout, True))
        if not deadlines:
            return await reader.read(size)
        deadline, frame = min(deadlines)
        try:
            async with asyncio.timeout_at(deadline):
                return await reader.read(size)
        except TimeoutError:
            if frame:
                raise _Timeout(
                    f"record not complete within frame_timeout ({clients.frame_timeout:g}s)",
                    frame=True,
                ) from None
            raise _Timeout(
                f"silent for net.io_timeout ({clients.io_timeout:g}s)", frame=pending
            ) from None

    def malformed(self, count: int, message: str, *args: object) -> None:
        """Count ``count`` malformed records; the first time per connection, log
        ``message % args`` (summarised across connections)."""
        if count <= 0:
            return
        self._clients.stats.reject("malformed", count)
        if not self.warned:
            self.warned = True
            self._clients.log_malformed.log("malformed data", message, *args)


#: Time a client of a TLS stream input (tcp, syslog) has for its handshake.
TLS_HANDSHAKE_TIMEOUT = 10.0

ClientHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def start_tcp_server(
    handler: ClientHandler,
    host: str,
    port: int,
    limit: int,
    ssl: ssl_module.SSLContext | None = None,
    on_tls_failure: Callable[[str, Exception], None] | None = None,
) -> tuple[asyncio.Server, int]:
    """A TCP (or TLS, with ``ssl``) server on ``host:port`` and the port it got
    (``port`` 0 picks a free one).

    With ``ssl`` each connection does its TLS handshake in its own task (within
    :data:`TLS_HANDSHAKE_TIMEOUT`); one that fails is closed and handed
    to ``on_tls_failure(peer, error)`` (asyncio would drop it without a word)."""
    serve = handler
    if ssl is not None:
        context = ssl

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT):
                    await writer.start_tls(context)
            except Exception as exc:  # ssl.SSLError, a reset, the timeout
                if on_tls_failure is not None:
                    on_tls_failure(address_name(writer.get_extra_info("peername")), exc)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                return
            await handler(reader, writer)

    server = await asyncio.start_server(serve, host, port, limit=limit)
    sockets = server.sockets
    if sockets:
        port = sockets[0].getsockname()[1]
    return server, port


class StreamClients:
    """The tasks serving one input's open connections, and how many it has accepted."""

    def __init__(
        self,
        logger: logging.Logger,
        name: str = "input",
        *,
        max_connections: int = 0,
        frame_timeout: float = 0.0,
        io_timeout: float = 0.0,
    ) -> None:
        self._logger = logger
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed: set[str] = set()  #: kinds of unexpected errors logged already
        self.name = name
        self.frame_timeout = frame_timeout
        self.io_timeout = io_timeout
        self.stats = ConnectionStats(max_connections)
        self.log_closed = SummarisedLog(logger, name)
        self.log_refused = refusal_log(logger, name)
        self.log_malformed = SummarisedLog(logger, name, what="connections warned")

    @classmethod
    def for_input(cls, ctx: InputContext) -> StreamClients:
        """The clients of an input with :data:`STREAM_LIMIT_OPTIONS` in its table."""
        opts = ctx.options
        return cls(
            ctx.logger,
            ctx.name,
            max_connections=opts.int("max_connections"),
            frame_timeout=opts.float("frame_timeout"),
            io_timeout=opts.float("net.io_timeout"),
        )

    @contextlib.asynccontextmanager
    async def serving(
        self, writer: asyncio.StreamWriter, address: str | None
    ) -> AsyncIterator[Session]:
        """Serve one connection in the current task; a connection error ends it quietly.

        Over ``max_connections`` the session is not ``admitted``: its reads return
        end of stream at once, so the input's loop ends and the connection is closed.
        """
        task = asyncio.current_task()
        assert task is not None
        admitted = self.stats.admit(self.log_refused)
        self._tasks.add(task)
        try:
            yield Session(self, address, admitted)
        except _Timeout as exc:
            if exc.frame:
                self.stats.reject("timeout")
                self.log_closed.log(
                    "timeout", "%s: closing connection from %s: %s", self.name, address, exc
                )
            else:
                self._logger.debug("closing %s: %s", address, exc)
        except (ConnectionError, OSError) as exc:
            self._logger.debug("%s closed: %s", address, exc)
        except Exception as exc:  # a bug or a storage that stops: this connection only
            what = type(exc).__name__
            if what not in self._failed:  # once per kind of error, traceback at debug
                self._failed.add(what)
                self._logger.error(
                    "connection from %s closed on an unexpected error (%s: %s); the input"
                    " goes on serving (further %s errors at debug)",
                    address,
                    what,
                    exc,
                    what,
                )
            else:
                self._logger.debug("connection from %s closed: %s: %s", address, what, exc)
            self._logger.debug("the traceback of the error", exc_info=exc)
        finally:
            self._tasks.discard(task)
            if admitted:
                self.stats.closed()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def tls_failed(self, peer: str, exc: Exception) -> None:
        """A client whose TLS handshake failed: counted (``tls``) and logged as a
        warning naming the peer and the reason (summarised across clients)."""
        self.stats.reject("tls")
        reason = handshake_failure(exc, f"{TLS_HANDSHAKE_TIMEOUT:g}s")
        self.log_closed.log(
            "tls",
            "%s: closing connection from %s: TLS handshake failed: %s",
            self.name,
            peer,
            reason,
        )

    async def cancel(self) -> None:
        """Cancel every connection still served and wait until each has ended."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for log in (self.log_closed, self.log_refused, self.log_malformed):
            log.close()

    @property
    def connections(self) -> int:
        """Connections accepted since start (refused ones not counted)."""
        return self.stats.accepted

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<StreamClients open={len(self._tasks)} accepted={self.connections}>"
