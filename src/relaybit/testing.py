"""Public helpers for tests, relaybit's own and its users'.

- :class:`FakeClock`: a :class:`relaybit.clock.Clock` that moves only when told.
- :func:`make_node` / :func:`make_spec`: build Upstream models without a file.
- :class:`relaybit.upstream.dns.StaticResolver` (re-exported): a DNS answer table.
- :class:`LineServer`, :func:`line_connector`, :func:`line_sender`: a tiny line
  protocol over real 127.0.0.1 sockets ("a line in, ``ok`` back") to drive an
  :class:`relaybit.upstream.upstream.Upstream` without any output plugin.
- :func:`closed_port`: a local port where nothing listens (connection refused).
- :func:`wait_for` (async) / :func:`wait_until` (blocking): poll a condition with a
  deadline, the one polling loop every test uses instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from relaybit.errors import DeliveryError
from relaybit.upstream.dns import StaticResolver
from relaybit.upstream.node import Node, TLSSettings, UpstreamSettings, UpstreamSpec
from relaybit.upstream.upstream import Connection, Send

__all__ = [
    "FakeClock",
    "LineConnection",
    "LineServer",
    "StaticResolver",
    "closed_port",
    "line_connector",
    "line_sender",
    "make_node",
    "make_spec",
    "wait_for",
    "wait_until",
]

#: seconds between two looks at a polled condition
POLL_INTERVAL = 0.01


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
) -> Any:
    """Await until ``predicate()`` is truthy and return it; AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)  # the polling interval, not a wait for a result
    return value


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Block until ``predicate()`` is truthy and return it; AssertionError at the deadline.

    For tests that drive other processes from plain (non-async) code.
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL_INTERVAL)  # the polling interval, not a wait for a result
    return value


class FakeClock:
    """Monotonic and wall time that advance only through :meth:`advance`."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._monotonic += seconds
        self._wall += seconds

    def __repr__(self) -> str:
        return f"<FakeClock monotonic={self._monotonic:g} time={self._wall:g}>"


def make_node(
    name: str,
    port: int = 24224,
    host: str = "127.0.0.1",
    *,
    weight: int = 1,
    standby: bool = False,
    tls: bool = False,
) -> Node:
    """A :class:`Node` for tests."""
    return Node(
        name=name,
        host=host,
        port=port,
        weight=weight,
        standby=standby,
        tls=TLSSettings(enabled=tls),
    )


def make_spec(
    *nodes: Node, name: str = "test-upstream", settings: UpstreamSettings | None = None
) -> UpstreamSpec:
    """An :class:`UpstreamSpec` for tests."""
    return UpstreamSpec(name=name, nodes=tuple(nodes), settings=settings or UpstreamSettings())


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class LineServer:
    """A TCP receiver on 127.0.0.1: stores each line and answers ``reply``.

    With ``hang`` true it accepts and reads but never answers (a SIGSTOPped or
    wedged node).  ``lines`` holds what arrived, ``accepted`` counts connections.
    Use ``async with LineServer() as server`` (``server.port``), or start/stop.
    """

    def __init__(self, *, reply: bytes = b"ok\n", hang: bool = False, port: int = 0) -> None:
        self.reply = reply
        self.hang = hang
        self.port = port
        self.lines: list[bytes] = []
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> LineServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.accepted += 1
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                self.lines.append(line)
                if not self.hang:
                    writer.write(self.reply)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    async def drop_connections(self) -> None:
        """Abort every open connection but keep listening (a receiver restart)."""
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers))

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers))
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LineServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        mode = " hang" if self.hang else ""
        return f"<LineServer 127.0.0.1:{self.port}{mode} lines={len(self.lines)}>"


class LineConnection:
    """A client connection of the line protocol (a :class:`Connection`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def is_usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def __repr__(self) -> str:
        return f"<LineConnection usable={self.is_usable()}>"


async def line_connector(node: Node, host: str, port: int) -> Connection:
    """A connector: a plain TCP connection (OSError when refused)."""
    reader, writer = await asyncio.open_connection(host, port)
    return LineConnection(reader, writer)


def line_sender(payload: bytes = b"record\n", *, timeout: float = 2.0) -> Send:
    """A send: write ``payload``, then wait up to ``timeout`` for the ``ok`` line.

    Raises ``DeliveryError("ack_timeout")`` when no answer comes in time and
    ``DeliveryError("write")`` when the peer closes the connection.
    """

    async def send(node: Node, connection: Connection) -> None:
        assert isinstance(connection, LineConnection)
        connection.writer.write(payload)
        await connection.writer.drain()
        try:
            async with asyncio.timeout(timeout):
                answer = await connection.reader.readline()
        except TimeoutError:
            raise DeliveryError("ack_timeout", f"no answer within {timeout:g}s") from None
        if not answer:
            raise DeliveryError("write", "connection closed by peer")

    return send
