import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, default, iter_entries
from relaybit.net.forward_client import ForwardClient
from relaybit.net.forward_server import ForwardServer
from relaybit.testing import wait_for

T = EventTime(1700000000, 1)


class Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[str, bytes, int]] = []

    async def __call__(self, tag: str, entries: bytes, records: int) -> None:
        self.batches.append((tag, entries, records))

    @property
    def records(self) -> list[tuple[str, Any, Any]]:
        return [(tag, t, r) for tag, data, _ in self.batches for t, r in iter_entries(data)]


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, default=default, use_bin_type=True)


@pytest.fixture
async def served() -> AsyncIterator[tuple[ForwardServer, Sink]]:
    sink = Sink()
    server = ForwardServer(sink, host="127.0.0.1", port=0, buffer_max_size=64 * 1024)
    await server.start()
    yield server, sink
    await server.stop()


async def raw_send(port: int, data: bytes, *, read: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = b""
    if read:
        answer = await reader.read(1024)
    writer.close()
    await writer.wait_closed()
    return answer


async def test_all_modes_and_ack_over_tcp(served: tuple[ForwardServer, Sink]) -> None:
    server, sink = served
    stream = (
        pack(["a", T, {"m": 1}])
        + b"\xc0"
        + pack(["b", [[T, {"f": 1}]]])
        + pack(["c", entry(T, {"p": 1}), {"chunk": "xyz\n"}])
    )
    answer = await raw_send(server.port, stream, read=True)
    assert msgpack.unpackb(answer) == {"ack": "xyz\n"}
    await wait_for(lambda: len(sink.records) == 3)
    assert sink.records == [("a", T, {"m": 1}), ("b", T, {"f": 1}), ("c", T, {"p": 1})]
    assert "records=3" in repr(server)


async def test_ack_only_after_handler_returned() -> None:
    gate = asyncio.Event()
    stored: list[int] = []

    async def slow(tag: str, entries: bytes, records: int) -> None:
        await gate.wait()
        stored.append(records)

    server = ForwardServer(slow, host="127.0.0.1", port=0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(pack(["t", entry(1, {}), {"chunk": "c1"}]))
        await writer.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await reader.read(100)
        gate.set()
        assert msgpack.unpackb(await reader.read(100)) == {"ack": "c1"}
        assert stored == [1]
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()


async def test_bad_frame_closes_only_that_connection_with_one_log_line(
    served: tuple[ForwardServer, Sink], caplog: pytest.LogCaptureFixture
) -> None:
    server, sink = served
    client = await ForwardClient.connect("127.0.0.1", server.port)
    caplog.set_level(logging.WARNING)
    await raw_send(server.port, b"\x01garbage")
    await raw_send(server.port, pack(["t", b"x" * 100_000]))  # over buffer_max_size
    await raw_send(server.port, pack(["t", T, {"a": 1}])[:-2])  # mid-frame disconnect
    await wait_for(lambda: server.errors_total == 3)
    lines = [r.getMessage() for r in caplog.records if "closing connection" in r.getMessage()]
    assert len(lines) == 3
    assert all("127.0.0.1:" in line for line in lines)
    assert "buffer_max_size" in lines[1] and "middle of a frame" in lines[2]
    await client.send_chunk("ok", entry(T, {"still": "served"}), 1, require_ack=True)
    assert sink.records == [("ok", T, {"still": "served"})]
    await client.aclose()


async def test_udp_heartbeat_answered_on_the_same_port(served: tuple[ForwardServer, Sink]) -> None:
    server, _ = served
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(
        Proto, remote_addr=("127.0.0.1", server.port), family=socket.AF_INET
    )
    try:
        transport.sendto(b"\x00")
        async with asyncio.timeout(5):
            assert await got == b"\x00"
    finally:
        transport.close()


async def test_unix_socket(tmp_path: Path) -> None:
    sink = Sink()
    path = str(tmp_path / "fwd.sock")
    server = ForwardServer(sink, unix_path=path, unix_perm=0o600)
    await server.start()
    try:
        assert (Path(path).stat().st_mode & 0o777) == 0o600
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(pack(["u", entry(T, {"x": 1}), {"chunk": "k"}]))
        await writer.drain()
        assert msgpack.unpackb(await reader.read(100)) == {"ack": "k"}
        writer.close()
        await writer.wait_closed()
        assert sink.records == [("u", T, {"x": 1})]
    finally:
        await server.stop()
    assert not Path(path).exists()


QUIET = logging.getLogger("tests.forward.fuzz")
QUIET.setLevel(logging.ERROR)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    junk=st.one_of(
        st.binary(min_size=1, max_size=300),
        st.integers(min_value=1, max_value=60).map(lambda n: pack(["t", T, {"k": "v" * 9}])[:n]),
    )
)
def test_fuzz_server_survives_and_serves_a_good_client(junk: bytes) -> None:
    async def scenario() -> None:
        sink = Sink()
        server = ForwardServer(sink, host="127.0.0.1", port=0, udp_heartbeat=False, logger=QUIET)
        await server.start()
        try:
            good = await ForwardClient.connect("127.0.0.1", server.port)
            await raw_send(server.port, junk)
            await good.send_chunk("good", entry(T, {"n": 1}), 1, require_ack=True, ack_timeout=5)
            await good.send_chunk("good", entry(T, {"n": 2}), 1, require_ack=True, ack_timeout=5)
            await good.aclose()
            good_records = [r for r in sink.records if r[0] == "good"]
            assert good_records == [("good", T, {"n": 1}), ("good", T, {"n": 2})]
        finally:
            await server.stop()

    asyncio.run(scenario())


async def test_handler_failure_closes_without_ack(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(tag: str, entries: bytes, records: int) -> None:
        raise RuntimeError("storage full")

    caplog.set_level(logging.WARNING, logger="relaybit.forward")
    server = ForwardServer(broken, host="127.0.0.1", port=0, udp_heartbeat=False)
    await server.start()
    try:
        answer = await raw_send(server.port, pack(["t", entry(1, {}), {"chunk": "c"}]), read=True)
        assert answer == b""
        assert any("storage full" in r.getMessage() for r in caplog.records)
    finally:
        await server.stop()
