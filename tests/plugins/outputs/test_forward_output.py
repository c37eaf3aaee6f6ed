import asyncio
import logging
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trustme

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.loader import full_configmap
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, InputContext, OutputContext
from relaybit.plugins.inputs.forward import ForwardInput
from relaybit.plugins.outputs.forward.options import node_settings
from relaybit.plugins.outputs.forward.output import ForwardOutput
from relaybit.testing import wait_for
from relaybit.upstream.node import Node, UpstreamSettings, UpstreamSpec

T = EventTime(1700000000, 42)
ORIGIN = Origin("test.conf", 1)


class Store:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any, Any]] = []
        self.raw: list[bytes] = []

    async def emit(self, tag: str, data: bytes, records: int) -> None:
        self.raw.append(data)
        got = list(iter_entries(data))
        assert len(got) == records
        self.items.extend((tag, t, r) for t, r in got)


def props(values: dict[str, str]) -> list[RawProperty]:
    return [RawProperty(k, v, ORIGIN) for k, v in values.items()]


async def start_input(store: Store, config_dir: Path, **values: str) -> ForwardInput:
    raw = props({"listen": "127.0.0.1", "port": "0", **values})
    opts = full_configmap("input", ForwardInput).resolve(raw, section="[INPUT] forward")
    ctx = InputContext(
        name="forward.0", plugin="forward", options=opts, emit=store.emit, config_dir=config_dir
    )
    plugin = ForwardInput(ctx)
    await plugin.start()
    return plugin


def make_output(
    config_dir: Path, values: dict[str, str], upstream: UpstreamSpec | None = None
) -> ForwardOutput:
    opts = full_configmap("output", ForwardOutput).resolve(
        props(values), section="[OUTPUT] forward"
    )
    ctx = OutputContext(
        name="forward.0", plugin="forward", options=opts, upstream=upstream, config_dir=config_dir
    )
    return ForwardOutput(ctx)


def chunk(n: int = 3, tag: str = "app") -> Chunk:
    data = b"".join(entry(T, {"n": i, "user": f"u{i % 2}"}) for i in range(n))
    return Chunk(tag=tag, data=data, records=n)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(base / "server.pem"))
    server.private_key_pem.write_to_path(str(base / "server.key"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(base / "other-ca.pem"))
    client = ca.issue_cert("client.example")
    client.cert_chain_pems[0].write_to_path(str(base / "client.pem"))
    client.private_key_pem.write_to_path(str(base / "client.key"))
    return base


TLS_IN = {"tls": "on", "tls.crt_file": "server.pem", "tls.key_file": "server.key"}
TLS_OUT = {"tls": "on", "tls.ca_file": "ca.pem"}


async def roundtrip(
    certs: Path, in_values: dict[str, str], out_values: dict[str, str]
) -> tuple[FlushResult, Store, ForwardOutput]:
    store = Store()
    plugin = await start_input(store, certs, **in_values)
    output = make_output(certs, {"host": "127.0.0.1", "port": str(plugin.port), **out_values})
    await output.start()
    try:
        result = await output.flush(chunk())
        if result is FlushResult.OK:
            await wait_for(lambda: len(store.items) >= 3)
    finally:
        await output.stop()
        await plugin.stop()
    return result, store, output


MUTUAL_IN = {**TLS_IN, "tls.ca_file": "ca.pem", "tls.verify": "on"}
CLIENT_CERT = {"tls.crt_file": "client.pem", "tls.key_file": "client.key"}

MODES = {
    "plain": ({}, {}),
    "mutual tls": (MUTUAL_IN, {**TLS_OUT, **CLIENT_CERT, "require_ack_response": "on"}),
    "gzip": ({}, {"compress": "gzip", "send_options": "on"}),
    "ack": ({}, {"require_ack_response": "on"}),
    "gzip+ack": ({}, {"compress": "gzip", "require_ack_response": "on"}),
    "zstd": ({}, {"compress": "zstd"}),
    "zstd+ack+tls": (TLS_IN, {**TLS_OUT, "compress": "zstd", "require_ack_response": "on"}),
    "shared_key+users": (
        {"shared_key": "k", "security.users": "alice pw"},
        {"shared_key": "k", "username": "alice", "password": "pw", "require_ack_response": "on"},
    ),
    "tls": (TLS_IN, TLS_OUT),
    "tls+shared_key": (
        {**TLS_IN, "shared_key": "k"},
        {**TLS_OUT, "shared_key": "k", "tls.vhost": "localhost", "tls.verify_hostname": "on"},
    ),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_output_to_input_in_every_mode(mode: str, certs: Path) -> None:
    in_values, out_values = MODES[mode]
    result, store, _ = await roundtrip(certs, in_values, out_values)
    assert result is FlushResult.OK
    assert store.items == [("app", T, {"n": i, "user": f"u{i % 2}"}) for i in range(3)]


@pytest.mark.parametrize("retain", ["default", "on", "off"])
async def test_metadata_is_relayed_unless_retain_metadata_is_off(retain: str, certs: Path) -> None:
    # one entry with metadata between two without: what a Fluent Bit 5 sender gives
    with_meta = msgpack.packb([[T.to_ext(), {"otlp": {"severity": 9}}], {"n": 1}])
    data = entry(T, {"n": 0}) + with_meta + entry(T, {"n": 2})
    store = Store()
    plugin = await start_input(store, certs)
    values = {"host": "127.0.0.1", "port": str(plugin.port), "require_ack_response": "on"}
    if retain != "default":
        values["retain_metadata_in_forward_mode"] = retain
    output = make_output(certs, values)
    await output.start()
    try:
        assert await output.flush(Chunk(tag="app", data=data, records=3)) is FlushResult.OK
        await wait_for(lambda: sum(map(len, store.raw)) > 0)
    finally:
        await output.stop()
        await plugin.stop()
    received = b"".join(store.raw)
    if retain == "off":
        assert received == entry(T, {"n": 0}) + entry(T, {"n": 1}) + entry(T, {"n": 2})
    else:  # as Fluent Bit 5.1 (default on): the metadata crosses the hop unchanged
        assert received == data


async def test_time_as_integer_and_tag_override(certs: Path) -> None:
    result, store, _ = await roundtrip(certs, {}, {"time_as_integer": "on", "tag": "new"})
    assert result is FlushResult.OK
    assert store.items[0] == ("new", T.seconds, {"n": 0, "user": "u0"})


FAILURES = {
    "wrong key": (
        {"shared_key": "k"},
        {"shared_key": "nope", "require_ack_response": "on"},
        "shared_key mismatch",
    ),
    "wrong password": (
        {"shared_key": "k", "security.users": "alice pw"},
        {"shared_key": "k", "username": "alice", "password": "bad"},
        "username/password mismatch",
    ),
    "wrong CA": (TLS_IN, {"tls": "on", "tls.ca_file": "other-ca.pem"}, "certificate verify failed"),
    "plain to TLS, no ack": (TLS_IN, {}, "is tls on for this node?"),
    "plain to TLS, ack": (TLS_IN, {"require_ack_response": "on"}, "is tls on for this node?"),
    "TLS to plain": ({}, TLS_OUT, "TLS handshake failed"),
    "no client certificate": (
        MUTUAL_IN,
        {**TLS_OUT, "require_ack_response": "on"},
        "client certificate",
    ),
    "key but no HELO": ({}, {"shared_key": "k"}, "no HELO"),
    "HELO but no key": ({"shared_key": "k"}, {}, "no shared_key is configured"),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_misconfigured_node_fails_clearly_and_delivers_nothing(
    case: str, certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    in_values, out_values, reason = FAILURES[case]
    caplog.set_level(logging.WARNING)
    out_values = {**out_values, "net.connect_timeout": "1s"}
    result, store, output = await roundtrip(certs, in_values, out_values)
    assert result is FlushResult.RETRY
    assert store.items == []
    node = output.status()["nodes"][0]
    assert reason in node["last_error"]["message"], node["last_error"]
    assert "127.0.0.1:" in node["last_error"]["message"]
    assert any(reason in r.getMessage() for r in caplog.records)
    assert "nope" not in repr(output) and "nope" not in str(output.status())


async def test_hung_peer_is_an_ack_timeout_not_a_success(certs: Path) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    output = make_output(
        certs,
        {
            "host": "127.0.0.1",
            "port": str(port),
            "require_ack_response": "on",
            "ack_response_timeout": "300ms",
        },
    )
    await output.start()
    try:
        assert await output.flush(chunk()) is FlushResult.RETRY
        assert output.status()["nodes"][0]["last_error"]["kind"] == "ack_timeout"
    finally:
        await output.stop()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


def node(name: str, port: int, **extra: str) -> Node:
    props_ = {k: RawProperty(k, v, ORIGIN) for k, v in extra.items()}
    return Node(name=name, host="127.0.0.1", port=port, extra=props_, properties=props_)


async def test_upstream_node_key_overrides_output_key(certs: Path) -> None:
    store = Store()
    plugin = await start_input(store, certs, shared_key="right")
    spec = UpstreamSpec(name="up", nodes=(node("n1", plugin.port, shared_key="right"),))
    output = make_output(certs, {"shared_key": "wrong", "require_ack_response": "on"}, spec)
    await output.start()
    try:
        assert await output.flush(chunk()) is FlushResult.OK
        assert len(store.items) == 3
    finally:
        await output.stop()
        await plugin.stop()


async def test_output_key_applies_to_nodes_without_one(certs: Path) -> None:
    store = Store()
    plugin = await start_input(store, certs, shared_key="k")
    spec = UpstreamSpec(name="up", nodes=(node("n1", plugin.port),))
    output = make_output(certs, {"shared_key": "k"}, spec)
    await output.start()
    try:
        assert await output.flush(chunk()) is FlushResult.OK
        assert await output.flush(chunk()) is FlushResult.OK  # connection reused
        assert output.status()["nodes"][0]["pool"]["opened"] == 1
        await wait_for(lambda: len(store.items) == 6)
    finally:
        await output.stop()
        await plugin.stop()


def test_node_settings_resolution(certs: Path) -> None:
    output = make_output(certs, {"shared_key": "out", "compress": "gzip"})
    n = node("n1", 1, shared_key="node", **{"tls": "on", "tls.verify": "off"})
    s = node_settings(output.ctx.options, n)
    assert (s.shared_key, s.compress, s.tls.enabled, s.tls.verify) == ("node", "gzip", True, False)
    assert "node" not in repr(s)
    plain = node_settings(output.ctx.options, node("n2", 1))
    assert (plain.shared_key, plain.tls.enabled) == ("out", False)


async def test_hash_on_record_key_splits_the_chunk(certs: Path) -> None:
    stores = [Store(), Store()]
    inputs = [await start_input(s, certs) for s in stores]
    spec = UpstreamSpec(
        name="up",
        nodes=tuple(node(f"n{i}", p.port) for i, p in enumerate(inputs)),
        settings=UpstreamSettings(balance="hash", hash_key="user"),
    )
    output = make_output(certs, {"require_ack_response": "on"}, spec)
    await output.start()
    try:
        assert await output.flush(chunk(10)) is FlushResult.OK
        everything = stores[0].items + stores[1].items
        assert len(everything) == 10
        for s in stores:  # every user's records went to a single node
            users = {r["user"] for _, _, r in s.items}
            other = {r["user"] for st in stores if st is not s for _, _, r in st.items}
            assert not users & other
    finally:
        await output.stop()
        for p in inputs:
            await p.stop()


async def test_hash_split_keeps_records_with_invalid_utf8(certs: Path) -> None:
    """A record (or key value) holding invalid UTF-8 must not make the whole chunk fail.

    The forward input accepts such strings (decoded with surrogateescape); splitting
    by a record key used to re-pack them with a strict packer and hash the key with a
    strict encoder, so every flush of the chunk raised and nothing was delivered.
    """
    store = Store()
    plugin = await start_input(store, certs)
    spec = UpstreamSpec(
        name="up",
        nodes=(node("n0", plugin.port),),
        settings=UpstreamSettings(balance="hash", hash_key="user"),
    )
    output = make_output(certs, {"require_ack_response": "on"}, spec)
    bad = b"\xa4user\xa2\xff\xfe"  # {"user": <str with invalid UTF-8>}
    raw = b"\x92\xd7\x00" + T.to_ext().data + b"\x82" + bad + b"\xa3msg\xa3\xffok"
    data = raw + entry(T, {"user": "u1", "msg": "fine"})
    await output.start()
    try:
        assert await output.flush(Chunk(tag="app", data=data, records=2)) is FlushResult.OK
        await wait_for(lambda: len(store.items) == 2)
    finally:
        await output.stop()
        await plugin.stop()
    got = {r["msg"]: r["user"] for _, _, r in store.items}
    assert got["fine"] == "u1"
    assert got["\udcffok"] == "\udcff\udcfe"  # the original bytes, byte for byte


async def test_add_option_goes_in_the_option_map(certs: Path) -> None:
    """add_option pairs go in the option map, which they turn on (issue 13)."""
    frames: list[Any] = []
    accepted: list[asyncio.StreamWriter] = []

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        unpacker = msgpack.Unpacker(raw=False)
        while data := await reader.read(65536):
            unpacker.feed(data)
            for frame in unpacker:
                frames.append(frame)
                if isinstance(frame[-1], dict) and "chunk" in frame[-1]:
                    writer.write(msgpack.packb({"ack": frame[-1]["chunk"]}))

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    output = make_output(
        certs,
        {
            "host": "127.0.0.1",
            "port": str(port),
            "add_option": "region eu-1",
        },
    )
    await output.start()
    try:
        assert await output.flush(chunk()) is FlushResult.OK
        await wait_for(lambda: frames)
        tag, _entries, options = frames[0]
        assert tag == "app"
        options.pop("chunk", None)
        assert options == {"size": 3, "fluent_signal": 0, "region": "eu-1"}
    finally:
        await output.stop()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_net_io_timeout_fails_over_instead_of_hanging(certs: Path) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never reads: the client's writes block once buffers fill

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    output = make_output(certs, {"host": "127.0.0.1", "port": str(port), "net.io_timeout": "300ms"})
    big = b"".join(entry(T, {"blob": "x" * 60000, "n": i}) for i in range(300))  # ~18 MB
    await output.start()
    try:
        async with asyncio.timeout(20):
            assert await output.flush(Chunk(tag="app", data=big, records=300)) is FlushResult.RETRY
        assert output.status()["nodes"][0]["last_error"]["kind"] == "timeout"
    finally:
        await output.stop()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()
