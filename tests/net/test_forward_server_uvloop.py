"""The TLS Forward server on both event loops the agent may run on (asyncio and uvloop).

The agent runs on uvloop (``relaybit.agent.run_loop``) while pytest-asyncio uses
asyncio's default loop, so these tests run each body in its own
``asyncio.Runner(loop_factory=...)``, as the agent does.  Upgrading an accepted
socket with ``start_tls`` lost the ClientHello under uvloop (uvloop#707): the first
TLS handshake hung for the whole handshake timeout and a plain client was never
told that the node is TLS.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.loader import full_configmap
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import DeliveryError
from relaybit.net.forward_client import ForwardClient
from relaybit.net.forward_server import ForwardServer
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext
from relaybit.plugins.outputs.forward.output import ForwardOutput
from relaybit.testing import wait_for

T = EventTime(1700000000, 7)
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "asyncio": None,
    "uvloop": uvloop.new_event_loop,
}
# a correctness bound (the bug took the whole 10 s handshake timeout), not a benchmark
PROMPT = 5.0
TLS_HINT = "is tls on for this node?"


def run_on(loop: str, body: Callable[[], Coroutine[Any, Any, None]]) -> list[dict[str, Any]]:
    """Run ``body()`` on a fresh ``loop``; returns what reached the loop's exception handler."""
    unhandled: list[dict[str, Any]] = []
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.get_loop().set_exception_handler(lambda _loop, ctx: unhandled.append(ctx))
        runner.run(body())
    return unhandled


class Sink:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def __call__(self, tag: str, entries: bytes, records: int) -> None:
        self.records.extend(record for _, record in iter_entries(entries))


class Certs:
    def __init__(self, base: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server)
        self.client = ssl.create_default_context()
        ca.configure_trust(self.client)
        self.ca_file = base / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


async def tls_server(certs: Certs, sink: Sink, host: str = "127.0.0.1") -> ForwardServer:
    server = ForwardServer(sink, host=host, port=0, ssl=certs.server, udp_heartbeat=False)
    await server.start()
    return server


def no_clients(server: ForwardServer) -> Callable[[], bool]:
    return lambda: server.status()["clients"] == 0


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("loop", list(LOOPS))
def test_first_tls_connection_to_a_fresh_server_completes_promptly(
    loop: str, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relaybit.forward")

    async def body() -> None:
        for attempt in range(10):
            sink = Sink()
            server = await tls_server(certs, sink)
            try:
                async with asyncio.timeout(PROMPT):
                    client = await ForwardClient.connect(
                        "127.0.0.1", server.port, ssl=certs.client, timeout=15
                    )
                    try:
                        await client.send_chunk(
                            "t", entry(T, {"n": attempt}), 1, require_ack=True, ack_timeout=15
                        )
                    finally:
                        await client.aclose()
                assert sink.records == [{"n": attempt}]
                await wait_for(no_clients(server))
            finally:
                await server.stop()

    assert run_on(loop, body) == []
    assert warnings_of(caplog) == [], "a TLS client closing cleanly is not a warning"


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("acks", [False, True], ids=["no-ack", "ack"])
def test_plain_client_to_tls_server_is_told_and_the_server_logs_once(
    loop: str, acks: bool, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relaybit.forward")
    errors: list[DeliveryError] = []

    async def body() -> None:
        sink = Sink()
        server = await tls_server(certs, sink)
        client = await ForwardClient.connect("127.0.0.1", server.port, timeout=5)
        try:
            with pytest.raises(DeliveryError) as info:
                await client.send_chunk("t", entry(T, {"n": 1}), 1, require_ack=acks, ack_timeout=5)
            errors.append(info.value)
            await wait_for(lambda: server.errors_total == 1)
        finally:
            await client.aclose()
            await server.stop()
        assert sink.records == []

    assert run_on(loop, body) == [], "a failed handshake must not be an unhandled exception"
    assert TLS_HINT in errors[0].message and "127.0.0.1:" in errors[0].message
    logged = warnings_of(caplog)
    assert len(logged) == 1, logged
    assert "TLS handshake failed" in logged[0] and "is the client using TLS?" in logged[0]
    assert "from 127.0.0.1:" in logged[0]
    assert "WRONG_VERSION_NUMBER" in logged[0] and "_ssl.c" not in logged[0]


@pytest.mark.parametrize("loop", list(LOOPS))
def test_tcp_client_closing_during_the_handshake_is_named(
    loop: str, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relaybit.forward")

    async def body() -> None:
        server = await tls_server(certs, Sink())
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()
            await writer.wait_closed()
            await wait_for(lambda: server.errors_total == 1)
        finally:
            await server.stop()

    assert run_on(loop, body) == []
    logged = warnings_of(caplog)
    assert len(logged) == 1, logged
    assert "closed the connection during the handshake" in logged[0], logged


@pytest.mark.parametrize("loop", list(LOOPS))
def test_tls_client_dropping_between_frames_is_not_a_warning_but_mid_frame_is(
    loop: str, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relaybit.forward")

    async def body() -> None:
        server = await tls_server(certs, Sink())
        try:
            # an abort (no close_notify) after a complete frame: the server sees a reset
            client = await ForwardClient.connect("127.0.0.1", server.port, ssl=certs.client)
            await client.send_chunk("t", entry(T, {}), 1, require_ack=True, ack_timeout=5)
            client._writer.transport.abort()
            await client.aclose()
            await wait_for(lambda: server.status()["clients"] == 0)
            assert server.errors_total == 0
            # half a frame, then an abort: that is a lost message, worth a warning
            _, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=certs.client, server_hostname="127.0.0.1"
            )
            writer.write(b"\x93\xa1t")
            await writer.drain()
            await wait_for(lambda: server.status()["clients"] == 1)
            writer.transport.abort()
            await wait_for(lambda: server.errors_total == 1)
        finally:
            await server.stop()

    assert run_on(loop, body) == []
    logged = warnings_of(caplog)
    assert len(logged) == 1 and "middle of a frame" in logged[0], logged


@pytest.mark.parametrize("loop", list(LOOPS))
def test_tls_server_on_every_address_of_a_name_and_a_clear_bind_error(
    loop: str, certs: Certs
) -> None:
    async def body() -> None:
        sink = Sink()
        server = await tls_server(certs, sink, host="localhost")
        try:
            client = await ForwardClient.connect("127.0.0.1", server.port, ssl=certs.client)
            await client.send_chunk("t", entry(T, {"a": 1}), 1, require_ack=True, ack_timeout=5)
            await client.aclose()
            assert sink.records == [{"a": 1}]
            taken = ForwardServer(
                sink, host="127.0.0.1", port=server.port, ssl=certs.server, udp_heartbeat=False
            )
            with pytest.raises(OSError, match="error while attempting to bind on address"):
                await taken.start()
        finally:
            await server.stop()
        with socket.socket() as probe:  # the listener is closed after stop()
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0

    assert run_on(loop, body) == []


@pytest.mark.parametrize("loop", list(LOOPS))
def test_stop_during_handshakes_closes_everything(loop: str, certs: Certs) -> None:
    async def body() -> None:
        server = await tls_server(certs, Sink())
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        await wait_for(lambda: server.connections_total + len(server._tasks) >= 3)
        await server.stop()
        for reader, writer in silent:
            assert await reader.read() == b""  # the server closed its side
            writer.close()
            await writer.wait_closed()

    assert run_on(loop, body) == []


def make_output(certs: Certs, port: int, values: dict[str, str]) -> ForwardOutput:
    origin = Origin("test.conf", 1)
    raw = [
        RawProperty(k, v, origin)
        for k, v in {
            "host": "127.0.0.1",
            "port": str(port),
            "net.connect_timeout": "1s",
            **values,
        }.items()
    ]
    opts = full_configmap("output", ForwardOutput).resolve(raw, section="[OUTPUT] forward")
    ctx = OutputContext(
        name="forward.0",
        plugin="forward",
        options=opts,
        upstream=None,
        config_dir=certs.ca_file.parent,
    )
    return ForwardOutput(ctx)


OUTPUT_CASES: dict[str, tuple[dict[str, str], FlushResult]] = {
    "plain, no ack": ({}, FlushResult.RETRY),
    "plain, ack": ({"require_ack_response": "on"}, FlushResult.RETRY),
    "tls, no ack": ({"tls": "on", "tls.ca_file": "ca.pem"}, FlushResult.OK),
}


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("case", list(OUTPUT_CASES))
def test_forward_output_to_a_tls_node(loop: str, case: str, certs: Certs) -> None:
    values, expected = OUTPUT_CASES[case]
    results: list[FlushResult] = []
    errors: list[str] = []

    async def body() -> None:
        sink = Sink()
        server = await tls_server(certs, sink)
        output = make_output(certs, server.port, values)
        await output.start()
        try:
            flush: Awaitable[FlushResult] = output.flush(
                Chunk(tag="app", data=entry(T, {"n": 1}), records=1)
            )
            async with asyncio.timeout(PROMPT):
                results.append(await flush)
            if expected is FlushResult.OK:
                await wait_for(lambda: sink.records == [{"n": 1}])
            else:
                assert sink.records == []
                errors.append(output.status()["nodes"][0]["last_error"]["message"])
        finally:
            await output.stop()
            await server.stop()

    assert run_on(loop, body) == []
    assert results == [expected]
    if expected is FlushResult.RETRY:
        assert TLS_HINT in errors[0], errors


async def test_accept_errors_back_off_or_stop_with_one_log_line(
    certs: Certs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_accept = loop.sock_accept
    failures = [OSError(errno.EMFILE, "Too many open files")]

    async def flaky_accept(sock: socket.socket) -> tuple[socket.socket, Any]:
        if failures:
            raise failures.pop()
        return await real_accept(sock)

    monkeypatch.setattr(loop, "sock_accept", flaky_accept)
    caplog.set_level(logging.WARNING, logger="relaybit.forward")
    sink = Sink()
    server = await tls_server(certs, sink)
    try:
        # out of descriptors: a warning, then the server accepts again
        client = await ForwardClient.connect("127.0.0.1", server.port, ssl=certs.client)
        await client.send_chunk("t", entry(T, {"n": 1}), 1, require_ack=True, ack_timeout=5)
        await client.aclose()
        assert sink.records == [{"n": 1}]
        # an error that will not go away: one error line, the acceptor ends (no busy loop)
        failures.append(OSError(errno.EBADF, "Bad file descriptor"))
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await wait_for(lambda: all(task.done() for task in server._acceptors))
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
    logged = [line for line in warnings_of(caplog) if "accept" in line]
    assert len(logged) == 2, logged
    assert "accept failed: [Errno 24] Too many open files; retrying in 1s" in logged[0]
    assert "no longer accepting TLS clients" in logged[1] and "Bad file descriptor" in logged[1]
