"""The connections a stream-socket input (tcp, syslog tcp/unix_tcp) serves.

Each connection runs in its own task (asyncio's ``start_server`` callback);
:meth:`StreamClients.serving` tracks that task, logs a connection error at
debug level instead of raising it, and closes the writer however the
connection ends; :meth:`StreamClients.cancel` ends them all on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable

from relaybit.config.schema import ConfigMap, Option
from relaybit.plugins.base import InputContext
from relaybit.upstream.node import TLS_OPTIONS, TLSSettings
from relaybit.upstream.tls import server_context

#: TLS keys of a TCP server input (tcp, syslog): Fluent Bit's TLS map
SERVER_TLS_OPTIONS = (
    ConfigMap(
        (
            Option(
                "tls.verify_client_cert",
                "bool",
                None,
                "Require a client certificate signed by tls.ca_file (default: tls.verify"
                " with a CA given)",
            ),
        )
    )
    + TLS_OPTIONS
)


def tls_server(ctx: InputContext) -> ssl_module.SSLContext | None:
    """The TLS context of a server input's ``tls.*`` keys (None when ``tls`` is off)."""
    opts = ctx.options
    return server_context(
        TLSSettings.from_options(opts),
        ctx.config_dir,
        require_client_cert=(
            opts.bool("tls.verify_client_cert") if opts.is_set("tls.verify_client_cert") else None
        ),
    )


ClientHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def start_tcp_server(
    handler: ClientHandler,
    host: str,
    port: int,
    limit: int,
    ssl: ssl_module.SSLContext | None = None,
    handshake_timeout: float | None = None,
) -> tuple[asyncio.Server, int]:
    """A TCP (or TLS, with ``ssl``) server on ``host:port`` and the port it got
    (``port`` 0 picks a free one)."""
    server = await asyncio.start_server(
        handler,
        host,
        port,
        limit=limit,
        ssl=ssl,
        ssl_handshake_timeout=handshake_timeout if ssl is not None else None,
    )
    sockets = server.sockets
    if sockets:
        port = sockets[0].getsockname()[1]
    return server, port


class StreamClients:
    """The tasks serving one input's open connections, and how many it has accepted."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self._failed: set[str] = set()  #: kinds of unexpected errors logged already

    @contextlib.asynccontextmanager
    async def serving(
        self, writer: asyncio.StreamWriter, address: str | None
    ) -> AsyncIterator[None]:
        """Serve one connection in the current task; a connection error ends it quietly."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            yield
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
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def cancel(self) -> None:
        """Cancel every connection still served and wait until each has ended."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<StreamClients open={len(self._tasks)} accepted={self.connections}>"
