"""relaybit.Sender / AsyncSender against real Forward receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from fluent import sender as fluent_sender

import relaybit
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.errors import ConfigError
from relaybit.net.forward_server import ForwardServer
from relaybit.sender import AsyncSender, Sender, SenderStats
from relaybit.testing import closed_port
from relaybit.upstream.node import NetSettings, UpstreamSettings

KEY = "s3cret-key"


class Receiver:
    """A relaybit ForwardServer that keeps ``(tag, time, record)`` of what arrived."""

    def __init__(self, arrived: asyncio.Event, port: int = 0, **server: Any) -> None:
        self.arrived = arrived
        self.records: list[tuple[str, Any, dict[str, Any]]] = []
        self.server = ForwardServer(
            self._on_entries, host="127.0.0.1", port=port, udp_heartbeat=False, **server
        )

    async def _on_entries(self, tag: str, entries: bytes, records: int) -> None:
        self.records.extend((tag, t, r) for t, r in iter_entries(entries))
        self.arrived.set()

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> Receiver:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()


class Tier:
    """Receivers sharing one "something arrived" event."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.receivers: list[Receiver] = []

    async def add(self, port: int = 0, **server: Any) -> Receiver:
        receiver = await Receiver(self.arrived, port, **server).start()
        self.receivers.append(receiver)
        return receiver

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", r.port) for r in self.receivers]

    def ids(self) -> list[int]:
        return [rec["i"] for r in self.receivers for _, _, rec in r.records]

    async def wait_for(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.arrived.clear()
                await self.arrived.wait()

    async def stop(self) -> None:
        for receiver in self.receivers:
            await receiver.stop()


@pytest.fixture
async def tier() -> AsyncIterator[Tier]:
    t = Tier()
    yield t
    await t.stop()


async def poll(done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Check ``done`` until it holds (state of the sender's thread has no event)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def close(sender: Sender, timeout: float = 5.0) -> SenderStats:
    """Close in a worker thread: the receivers run in this test's loop."""
    return await asyncio.to_thread(sender.close, timeout)


def fast(**kwargs: Any) -> dict[str, Any]:
    """Sender arguments for tests: short waits, a short connect timeout."""
    base: dict[str, Any] = {
        "flush_interval": 0.05,
        "retry_wait": 0.05,
        "retry_max_wait": 0.2,
        "net": NetSettings(connect_timeout=2.0),
    }
    return base | kwargs


# -- delivery ---------------------------------------------------------------------


async def test_records_over_three_nodes_arrive_once_each(tier: Tier) -> None:
    for _ in range(3):
        await tier.add()
    sender = Sender("app", nodes=tier.nodes, chunk_size=400, **fast())
    for i in range(600):
        assert sender.emit("web", {"i": i, "path": "/x"})
    await tier.wait_for(lambda: len(tier.ids()) >= 600)
    stats = await close(sender)
    assert sorted(tier.ids()) == list(range(600))  # each once: acks, no resend
    assert all(r.records for r in tier.receivers), "round robin reaches every node"
    assert {tag for r in tier.receivers for tag, _, _ in r.records} == {"app.web"}
    assert (stats.emitted, stats.delivered, stats.dropped, stats.buffered) == (600, 600, 0, 0)
    assert stats.undelivered == 0 and stats.closed
    assert len(stats.nodes) == 3
    assert sum(n["counters"]["records"] for n in stats.nodes) == 600


async def test_a_node_closed_mid_run_fails_over_and_nothing_is_lost(tier: Tier) -> None:
    for _ in range(3):
        await tier.add()
    sender = Sender("app", nodes=tier.nodes, chunk_size=300, **fast())
    for i in range(200):
        sender.emit("t", {"i": i})
    await tier.wait_for(lambda: len(set(tier.ids())) >= 200)
    await tier.receivers[0].stop()
    for i in range(200, 500):
        sender.emit("t", {"i": i})
    await tier.wait_for(lambda: set(range(500)) <= set(tier.ids()))
    stats = await close(sender)
    assert stats.delivered == 500 and stats.undelivered == 0
    dead = stats.nodes[0]
    assert dead["counters"]["failures"], dead
    assert dead["state"] != "healthy"
    assert stats.upstream["failovers"] >= 1


async def test_shared_key_handshake(tier: Tier) -> None:
    await tier.add(shared_key=KEY)
    sender = Sender("app", nodes=tier.nodes, shared_key=KEY, **fast())
    assert KEY not in repr(sender)
    for i in range(10):
        sender.emit("auth", {"i": i})
    await tier.wait_for(lambda: len(tier.ids()) == 10)
    stats = await close(sender)
    assert stats.delivered == 10
    assert KEY not in str(stats.as_dict())


async def test_wrong_shared_key_delivers_nothing_and_says_why(tier: Tier) -> None:
    await tier.add(shared_key=KEY)
    sender = Sender("app", nodes=tier.nodes, shared_key="wrong", **fast())
    sender.emit("auth", {"i": 1})
    await poll(lambda: sender.stats().retries > 0)
    stats = await close(sender, 0.3)
    assert tier.ids() == []
    assert stats.undelivered == 1 and stats.dropped_by_reason == {"close": 1}
    assert stats.last_error is not None and "shared_key" in stats.last_error
    assert "wrong" not in str(stats.as_dict())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


async def test_tls_with_an_ssl_context(tier: Tier, ca: trustme.CA) -> None:
    await tier.add(ssl=tls_server_context(ca), shared_key=KEY)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    sender = Sender("app", nodes=tier.nodes, tls=client, shared_key=KEY, **fast())
    for i in range(20):
        sender.emit("tls", {"i": i})
    await tier.wait_for(lambda: len(tier.ids()) == 20)
    stats = await close(sender)
    assert stats.delivered == 20
    assert stats.nodes[0]["tls"] is True


async def test_upstream_file_with_tls_per_node_key_and_standby(
    tier: Tier, ca: trustme.CA, tmp_path: Path
) -> None:
    active = await tier.add(ssl=tls_server_context(ca), shared_key=KEY)
    standby = await tier.add()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    conf = tmp_path / "upstream.conf"
    conf.write_text(
        "[UPSTREAM]\n    name tier\n"
        f"[NODE]\n    name active\n    host 127.0.0.1\n    port {active.port}\n"
        f"    tls on\n    tls.ca_file ca.pem\n    shared_key {KEY}\n"
        f"[NODE]\n    name spare\n    host 127.0.0.1\n    port {standby.port}\n"
        "    standby on\n",
        encoding="utf-8",
    )
    sender = Sender("app", upstream=conf, chunk_size=200, **fast())
    for i in range(100):
        sender.emit("file", {"i": i})
    await tier.wait_for(lambda: len(tier.ids()) == 100)
    stats = await close(sender)
    assert len(active.records) == 100 and standby.records == []
    assert [n["name"] for n in stats.nodes] == ["active", "spare"]
    assert stats.upstream["name"] == "tier"


async def test_all_nodes_down_then_one_back_delivers_the_buffer(tier: Tier) -> None:
    ports = [closed_port(), closed_port()]
    sender = Sender("app", nodes=[("127.0.0.1", p) for p in ports], **fast())
    for i in range(50):
        assert sender.emit("down", {"i": i})
    await poll(lambda: sender.stats().retries >= 2)
    assert sender.stats().buffered == 50
    await tier.add(port=ports[1])
    await tier.wait_for(lambda: len(tier.ids()) == 50)
    stats = await close(sender)
    assert sorted(tier.ids()) == list(range(50))
    assert stats.delivered == 50 and stats.undelivered == 0 and stats.retries >= 2


async def test_buffer_full_drops_new_records_and_counts_them() -> None:
    sender = Sender("app", port=closed_port(), host="127.0.0.1", buffer_limit=1000, **fast())
    accepted = sum(sender.emit("full", {"i": i, "pad": "x" * 20}) for i in range(100))
    stats = sender.stats()
    assert 0 < accepted < 100
    assert stats.emitted == accepted
    assert stats.dropped_by_reason["buffer_full"] == 100 - accepted
    assert 0 < stats.buffered_bytes <= 1000
    assert isinstance(sender.last_error, BufferError)
    started = time.monotonic()
    final = await close(sender, 0.3)
    assert time.monotonic() - started < 5.0  # bounded by the timeout, not by the tier
    assert final.undelivered == accepted
    assert final.dropped_by_reason["close"] == accepted
    assert final.buffered == 0
    assert not sender.emit("full", {"i": -1})
    assert sender.stats().dropped_by_reason["closed"] == 1


async def test_block_policy_waits_then_drops() -> None:
    sender = Sender(
        "app",
        nodes=[f"127.0.0.1:{closed_port()}"],
        buffer_limit=200,
        on_full="block",
        block_timeout=0.05,
        **fast(),
    )
    results = [sender.emit("b", {"pad": "y" * 50}) for _ in range(10)]
    assert results[0] and not results[-1]
    stats = await close(sender, 0.1)
    assert stats.dropped_by_reason["buffer_full"] == results.count(False)


async def test_block_policy_gets_room_when_the_tier_confirms(tier: Tier) -> None:
    await tier.add()
    sender = Sender(
        "app", nodes=tier.nodes, buffer_limit=300, on_full="block", block_timeout=10, **fast()
    )
    results = await asyncio.to_thread(
        lambda: [sender.emit("b", {"i": i, "pad": "z" * 40}) for i in range(40)]
    )
    assert all(results)  # each waited for a confirmed flush instead of dropping
    await tier.wait_for(lambda: len(tier.ids()) == 40)
    stats = await close(sender)
    assert stats.delivered == 40 and stats.dropped == 0


async def test_retry_limit_drops_a_batch_no_node_takes() -> None:
    sender = Sender("app", nodes=[("127.0.0.1", closed_port())], retry_limit=1, **fast())
    sender.emit("r", {"i": 1})
    await poll(lambda: sender.stats().dropped_by_reason.get("retry_limit") == 1)
    stats = await close(sender, 0.1)
    assert stats.buffered == 0 and stats.undelivered == 0 and stats.retries == 1


async def test_async_sender_in_the_callers_loop(tier: Tier) -> None:
    for _ in range(3):
        await tier.add()
    async with AsyncSender("svc", nodes=tier.nodes, chunk_size=300, **fast()) as sender:
        for i in range(300):
            assert await sender.emit("ev", {"i": i})
        assert sender.emit_nowait("ev", {"i": 300})
        await tier.wait_for(lambda: len(tier.ids()) == 301)
    stats = sender.stats()
    assert sorted(tier.ids()) == list(range(301))
    assert stats.delivered == 301 and stats.closed
    assert not await sender.emit("ev", {"i": 0})


async def test_async_sender_close_with_the_tier_down_reports_undelivered() -> None:
    sender = AsyncSender("svc", port=closed_port(), host="127.0.0.1", **fast())
    for i in range(5):
        await sender.emit("x", {"i": i})
    stats = await sender.close(timeout=0.2)
    assert stats.undelivered == 5 and stats.delivered == 0
    assert stats.last_error is not None and "connect" in stats.last_error.lower()


# -- records, tags, times -------------------------------------------------------------


async def test_tags_times_and_unpackable_records(tier: Tier) -> None:
    await tier.add()
    sender = Sender("", nodes=tier.nodes, **fast())
    assert sender.full_tag("a.b") == "a.b"
    assert sender.emit("plain", {"i": 0}, time=1_700_000_000)
    assert sender.emit("plain", {"i": 1}, time=1_700_000_000.5)
    assert sender.emit("plain", {"i": 2}, time=EventTime(1, 2))
    assert not sender.emit("plain", {"i": 3, "bad": object()})
    assert isinstance(sender.last_error, TypeError)
    sender.clear_last_error()
    assert sender.last_error is None
    await tier.wait_for(lambda: len(tier.ids()) == 3)
    stats = await close(sender)
    times = {rec["i"]: t for _, t, rec in tier.receivers[0].records}
    assert times == {0: 1_700_000_000, 1: EventTime(1_700_000_000, 500_000_000), 2: EventTime(1, 2)}
    assert stats.dropped_by_reason == {"unpackable": 1}


async def test_default_hook_packs_other_types(tier: Tier) -> None:
    await tier.add()
    sender = Sender("app", nodes=tier.nodes, default=str, **fast())
    assert sender.emit(None, {"i": 0, "path": Path("/tmp/x")})
    await tier.wait_for(lambda: len(tier.ids()) == 1)
    await close(sender)
    tag, _, record = tier.receivers[0].records[0]
    assert tag == "app" and record["path"] == "/tmp/x"


# -- what a fluent-logger user writes ----------------------------------------------------


async def test_fluent_sender_code_maps_one_to_one(tier: Tier) -> None:
    receiver = await tier.add()
    now = int(time.time())

    def with_fluent_logger() -> None:
        logger = fluent_sender.FluentSender("app", "127.0.0.1", receiver.port)
        assert logger.emit("follow", {"i": 0, "from": "userA", "to": "userB"})
        assert logger.emit_with_time("follow", now, {"i": 1})
        assert logger.last_error is None
        logger.close()

    def with_relaybit() -> None:
        logger = relaybit.Sender("app", "127.0.0.1", receiver.port)
        assert logger.emit("follow", {"i": 0, "from": "userA", "to": "userB"})
        assert logger.emit_with_time("follow", now, {"i": 1})
        assert logger.last_error is None
        logger.close()

    await asyncio.to_thread(with_fluent_logger)
    await tier.wait_for(lambda: len(tier.ids()) == 2)
    theirs = list(receiver.records)
    receiver.records.clear()
    await asyncio.to_thread(with_relaybit)
    assert len(receiver.records) == 2  # close() delivered them
    ours = receiver.records
    assert [(tag, rec) for tag, _, rec in ours] == [(tag, rec) for tag, _, rec in theirs]
    assert ours[1][1] == theirs[1][1] == now


# -- arguments --------------------------------------------------------------------------


def test_contradictory_or_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not nodes and host/port"):
        Sender("app", "127.0.0.1", 24224, nodes=[("127.0.0.1", 1)])
    with pytest.raises(ValueError, match="host:port"):
        Sender("app", nodes=["nowhere"])
    with pytest.raises(ValueError, match="on_full"):
        Sender("app", on_full="wait")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="compress"):
        Sender("app", compress="lz4")
    conf = tmp_path / "up.conf"
    conf.write_text(
        "[UPSTREAM]\n    name u\n[NODE]\n    name a\n    host h\n    port 1\n"
        "    require_ack_respons on\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        Sender("app", upstream=conf)
    assert "up.conf:7" in str(info.value) and "require_ack_respons" in str(info.value)


async def test_hash_on_a_record_key_keeps_each_key_on_one_node_in_order(tier: Tier) -> None:
    for _ in range(3):
        await tier.add()
    sender = Sender(
        "app",
        nodes=tier.nodes,
        upstream_settings=UpstreamSettings(balance="hash", hash_key="user"),
        chunk_size=100,
        **fast(),
    )
    assert "open" in repr(sender)
    users = [f"user-{n}" for n in range(8)]
    for i in range(400):
        sender.emit("h", {"i": i, "user": users[i % 8]})
    await tier.wait_for(lambda: len(tier.ids()) >= 400)
    stats = await close(sender)
    assert stats.upstream["balance"] == "hash" and stats.delivered == 400
    assert "closed" in repr(sender)
    homes: dict[str, set[int]] = {}
    for n, receiver in enumerate(tier.receivers):
        seen: dict[str, list[int]] = {}
        for _, _, rec in receiver.records:
            homes.setdefault(rec["user"], set()).add(n)
            seen.setdefault(rec["user"], []).append(rec["i"])
        assert all(ids == sorted(ids) for ids in seen.values())  # a key keeps its order
    assert all(len(nodes) == 1 for nodes in homes.values()), homes
    assert len({n for nodes in homes.values() for n in nodes}) > 1


# -- the buffer alone ----------------------------------------------------------------------


def test_buffer_seals_full_chunks_and_retries_at_the_head() -> None:
    from relaybit.sender.buffer import Added, RecordBuffer

    buf = RecordBuffer(limit=100, chunk_size=30)
    assert buf.try_add("t", b"a" * 20) is Added.BUFFERED
    assert buf.try_add("t", b"b" * 20) is Added.CHUNK_FULL  # "a" sealed: 40 > 30
    assert buf.try_add("t", b"c" * 200) is Added.TOO_LARGE
    assert buf.try_add("t", b"d" * 70) is Added.FULL
    [first] = buf.take(4)
    assert (first.data, first.records) == (b"a" * 20, 1)
    assert buf.take(4) == []  # one batch of a tag in flight at a time
    buf.retry(first)
    [again] = buf.take(4)
    assert again is first and again.attempts == 1
    buf.delivered(again)
    [second] = buf.take(4)
    assert second.data == b"b" * 20
    assert buf.try_add("u", b"e" * 10) is Added.BUFFERED
    assert buf.discard_all("close") == 1  # the in-flight batch stays
    buf.drop(second, "rejected")
    assert (buf.records, buf.size) == (0, 0)
    assert buf.counters.dropped == {"close": 1, "rejected": 1}
    assert buf.counters.delivered == 1 and buf.counters.emitted == 3
    buf.closed = True
    assert buf.try_add("t", b"x") is Added.CLOSED
    assert "closed" in repr(buf)


async def test_close_with_a_hung_node_cancels_the_flush_and_reports_it() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # reads, never acks: a wedged receiver
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sender = Sender("app", "127.0.0.1", port, **fast())
        for i in range(10):
            sender.emit("hung", {"i": i})
        await poll(lambda: sender.stats().nodes[0]["in_flight"] == 1)
        started = time.monotonic()
        stats = await close(sender, 0.3)
        assert time.monotonic() - started < 5.0  # not the 30 s ack timeout
        assert stats.undelivered == 10 and stats.delivered == 0
        assert stats.dropped_by_reason == {"close": 10}
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
