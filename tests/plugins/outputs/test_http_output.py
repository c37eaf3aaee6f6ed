"""The http output: encoders, per-node settings, failover, 4xx, gzip, auth and TLS."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiohttp import web

from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.logging import plugin_logger
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import (
    INPUT_COMMON,
    OUTPUT_COMMON,
    FlushResult,
    InputContext,
    OutputContext,
)
from relaybit.plugins.inputs.http import HttpInput
from relaybit.plugins.outputs.encoder_pool import EncoderPool
from relaybit.plugins.outputs.http.encoder import GelfKeys, encode_body, gelf_message
from relaybit.plugins.outputs.http.options import OPTIONS, node_settings
from relaybit.plugins.outputs.http.output import HttpOutput
from relaybit.upstream.node import Node, TLSSettings, UpstreamSpec

ORIGIN = Origin("test.conf", 3)


def props(**kv: str) -> list[RawProperty]:
    return [RawProperty(k.replace("__", "."), v, ORIGIN) for k, v in kv.items()]


def make_node(name: str, port: int, **kv: str) -> Node:
    properties = {p.key: p for p in props(**kv)}
    tls = TLSSettings(
        enabled=kv.get("tls") == "on",
        ca_file=kv.get("tls__ca_file"),
    )
    return Node(name=name, host="127.0.0.1", port=port, tls=tls, properties=properties)


def make_output(
    nodes: tuple[Node, ...] | None = None,
    config_dir: Path | None = None,
    service: dict[str, Any] | None = None,
    **kv: str,
) -> HttpOutput:
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(props(**kv), section="[OUTPUT] http")
    spec = UpstreamSpec(name="up", nodes=nodes) if nodes else None
    ctx = OutputContext(
        name="http.0",
        plugin="http",
        options=opts,
        upstream=spec,
        config_dir=config_dir or Path.cwd(),
        logger=plugin_logger("output", "http", "http.0"),
        service=service or {},
    )
    return HttpOutput(ctx)


def chunk_of(records: list[dict[str, Any]], tag: str = "app") -> Chunk:
    data = pack_entries((EventTime(1700000000, 500_000_000), r) for r in records)
    return Chunk(tag=tag, data=data, records=len(records))


# -- encoders and settings -------------------------------------------------------


def test_gelf_message_fields() -> None:
    keys = GelfKeys(short_message="msg", level="lvl", host="hostname")
    msg = gelf_message(
        EventTime(1700000000, 250_000_000),
        {"msg": "hi", "lvl": "3", "hostname": "h1", "ctx": {"a": 1, "b": {"c": 2}}, "id": 7},
        keys,
    )
    assert msg == {
        "version": "1.1",
        "host": "h1",
        "short_message": "hi",
        "timestamp": 1700000000.25,
        "level": 3,
        "_ctx_a": 1,
        "_ctx_b_c": 2,
        "_id_": 7,
    }
    fallback = gelf_message(1, {"log": "line"}, GelfKeys())
    assert fallback["short_message"] == "line"
    assert "_log" not in fallback


def test_encode_formats() -> None:
    chunk = chunk_of([{"a": 1}, {"a": 2}])
    lines = encode_body(chunk.data, "t", "json_lines", date_key="date", date_format="epoch")
    assert [orjson.loads(x) for x in lines.splitlines()] == [
        {"date": 1700000000, "a": 1},
        {"date": 1700000000, "a": 2},
    ]
    array = encode_body(chunk.data, "t", "json", date_key=None, date_format="double")
    assert orjson.loads(array) == [{"a": 1}, {"a": 2}]
    assert (
        encode_body(chunk.data, "t", "msgpack", date_key=None, date_format="double") == chunk.data
    )
    gelf = encode_body(chunk.data, "t", "gelf", date_key=None, date_format="double")
    assert len(gelf.splitlines()) == 2


def test_node_keys_override_output_keys() -> None:
    opts = (OUTPUT_COMMON + OPTIONS).resolve(
        props(uri="/out", http_user="u", http_passwd="p", header="X-A 1"), section="[OUTPUT] http"
    )
    plain = node_settings(OPTIONS, opts, make_node("n0", 1), section="s")
    assert (plain.uri, plain.http_user, plain.headers) == ("/out", "u", (("X-A", "1"),))
    node = make_node("n1", 1, uri="/node", http_passwd="other", header="X-B 2", shared_key="k")
    s = node_settings(OPTIONS, opts, node, section="s")
    assert (s.uri, s.http_user, s.http_passwd, s.headers) == (
        "/node",
        "u",
        "other",
        (("X-B", "2"),),
    )
    assert "other" not in repr(s)
    with pytest.raises(ConfigError, match=r"test.conf:3.*node n2.*tls"):
        node_settings(OPTIONS, opts, make_node("n2", 1, tls="maybe"), section="[OUTPUT] http")


# -- against servers ---------------------------------------------------------------


class Scripted:
    """An aiohttp test server answering a fixed status, recording each request."""

    def __init__(self, status: int, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status, body=self.body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{p:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Collector:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        self.records.extend(r for _, r in iter_entries(data))


async def start_input(collector: Collector, config_dir: Path, **kv: str) -> HttpInput:
    kv.setdefault("port", "0")
    kv.setdefault("listen", "127.0.0.1")
    opts = (INPUT_COMMON + HttpInput.options).resolve(props(**kv), section="[INPUT] http")
    plugin = HttpInput(
        InputContext(
            name="in", plugin="http", options=opts, emit=collector, tag="in", config_dir=config_dir
        )
    )
    await plugin.start()
    return plugin


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.crt")
    return tmp_path


async def test_round_robin_gzip_auth_tls_across_three_inputs(
    certs: Path, pool: EncoderPool | None
) -> None:
    collectors = [Collector() for _ in range(3)]
    server_tls = {"tls": "on", "tls__crt_file": "server.crt", "tls__key_file": "server.key"}
    inputs = [
        await start_input(c, certs, http_user="relay", http_passwd="pw", **server_tls)
        for c in collectors
    ]
    nodes = tuple(
        make_node(f"n{i}", plugin.port, tls="on", tls__ca_file="ca.crt")
        for i, plugin in enumerate(inputs)
    )
    out = make_output(
        nodes,
        certs,
        format="json",
        compress="gzip",
        http_user="relay",
        http_passwd="pw",
        uri="/from.relay",
        service={"encoder_pool": pool},
    )
    await out.start()
    try:
        for n in range(6):
            result = await out.flush(chunk_of([{"n": n, "i": i} for i in range(10)]))
            assert result is FlushResult.OK
    finally:
        await out.stop()
        for plugin in inputs:
            await plugin.stop()
    got = sorted((r["n"], r["i"]) for c in collectors for r in c.records)
    assert got == [(n, i) for n in range(6) for i in range(10)]
    assert [len(c.records) for c in collectors] == [20, 20, 20]  # round robin, 2 chunks each
    assert all(r["date"] == 1700000000.5 for c in collectors for r in c.records)
    assert out.status()["delivered"] == 6
    if pool is not None:  # every body was written there
        assert pool.status()["chunks"] == 6 and pool.status()["in_agent"] == 0


async def test_500_fails_over_to_next_node() -> None:
    broken = Scripted(500, b"boom")
    await broken.start()
    collector = Collector()
    good = await start_input(collector, Path.cwd())
    out = make_output((make_node("bad", broken.port), make_node("good", good.port)), format="json")
    await out.start()
    try:
        assert await out.flush(chunk_of([{"x": 1}])) is FlushResult.OK
    finally:
        await out.stop()
        await good.stop()
        await broken.stop()
    assert len(broken.requests) == 1
    assert collector.records == [{"date": 1700000000.5, "x": 1}]


async def test_400_is_error_without_retry(caplog: pytest.LogCaptureFixture) -> None:
    refusing = Scripted(400, b"bad field " + b"x" * 2000)
    other = Scripted(200)
    await refusing.start()
    await other.start()
    out = make_output(
        (make_node("a", refusing.port), make_node("b", other.port)),
        format="json_lines",
        header="X-Team ops",
        http_passwd="topsecret",
        http_user="me",
    )
    await out.start()
    try:
        with caplog.at_level(logging.ERROR, logger="relaybit"):
            assert await out.flush(chunk_of([{"x": 1}])) is FlushResult.ERROR
    finally:
        await out.stop()
        await refusing.stop()
        await other.stop()
    assert len(refusing.requests) == 1
    assert other.requests == []  # a permanent error does not fail over
    headers, body = refusing.requests[0]
    assert headers["X-Team"] == "ops"
    assert headers["Content-Type"] == "application/x-ndjson"
    assert orjson.loads(body)["x"] == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    # the instance's logger: [output:http:http.0] and its own log_level
    assert errors[0].name == "relaybit.output:http:http.0"
    text = errors[0].getMessage()
    assert "HTTP 400" in text and "bad field" in text
    assert len(text) < 512 + 200  # the body is cut at 512 bytes
    assert "topsecret" not in text
    assert out.status()["rejected"] == 1


async def test_every_node_down_is_retry() -> None:
    dead = [Scripted(200) for _ in range(2)]
    for s in dead:
        await s.start()
    ports = [s.port for s in dead]
    for s in dead:
        await s.stop()
    out = make_output(tuple(make_node(f"d{i}", p) for i, p in enumerate(ports)), format="json")
    await out.start()
    try:
        assert await out.flush(chunk_of([{"x": 1}])) is FlushResult.RETRY
    finally:
        await out.stop()
    assert out.status()["retries"] == 1


async def test_single_host_gzip_body_and_header_tag() -> None:
    server = Scripted(201)
    await server.start()
    out = make_output(
        None, port=str(server.port), format="msgpack", compress="gzip", header_tag="X-Tag"
    )
    await out.start()
    chunk = chunk_of([{"m": 1}], tag="my.tag")
    try:
        assert await out.flush(chunk) is FlushResult.OK
    finally:
        await out.stop()
        await server.stop()
    headers, body = server.requests[0]
    assert headers["Content-Encoding"] == "gzip"
    assert headers["X-Tag"] == "my.tag"
    assert body == chunk.data  # aiohttp decompressed it


async def test_missing_ca_file_fails_at_start(tmp_path: Path) -> None:
    out = make_output((make_node("n", 1, tls="on", tls__ca_file="nope.crt"),), tmp_path)
    with pytest.raises((ConfigError, OSError, ssl.SSLError)):
        await out.start()


async def test_sighup_reload_moves_traffic_and_keeps_nodes_on_a_bad_file(tmp_path: Path) -> None:
    from relaybit.errors import ConfigErrors
    from relaybit.upstream.spec import load_upstream_file

    first, second = Collector(), Collector()
    in1 = await start_input(first, tmp_path)
    in2 = await start_input(second, tmp_path)
    path = tmp_path / "up.conf"

    def write(port: int, extra: str = "") -> None:
        path.write_text(
            f"[UPSTREAM]\n    name up\n[NODE]\n    name n\n    host 127.0.0.1\n"
            f"    port {port}\n{extra}",
            encoding="utf-8",
        )

    write(in1.port)
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(props(format="json"), section="[OUTPUT]")
    ctx = OutputContext(
        name="http.0", plugin="http", options=opts, upstream=load_upstream_file(str(path))
    )
    out = HttpOutput(ctx)
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        write(in2.port, "    uri /moved\n")
        out.reload_upstream()
        assert await out.flush(chunk_of([{"n": 2}])) is FlushResult.OK
        write(in1.port, "    nonsense_key 1\n")
        with pytest.raises(ConfigErrors, match="nonsense_key"):
            out.reload_upstream()
        assert await out.flush(chunk_of([{"n": 3}])) is FlushResult.OK
    finally:
        await out.stop()
        await in1.stop()
        await in2.stop()
    assert [r["n"] for r in first.records] == [1]
    assert [r["n"] for r in second.records] == [2, 3]


async def test_hash_on_a_record_key_sends_each_key_to_one_node() -> None:
    from relaybit.upstream.node import UpstreamSettings

    collectors = [Collector() for _ in range(3)]
    inputs = [await start_input(c, Path.cwd()) for c in collectors]
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(props(format="json"), section="[OUTPUT]")
    spec = UpstreamSpec(
        name="up",
        nodes=tuple(make_node(f"n{i}", p.port) for i, p in enumerate(inputs)),
        settings=UpstreamSettings(balance="hash", hash_key="user"),
    )
    out = HttpOutput(OutputContext(name="http.0", plugin="http", options=opts, upstream=spec))
    await out.start()
    users = [f"user-{u}" for u in range(12)]
    try:
        for n in range(5):
            chunk = chunk_of([{"user": u, "n": n} for u in users])
            assert await out.flush(chunk) is FlushResult.OK
    finally:
        await out.stop()
        for plugin in inputs:
            await plugin.stop()
    homes: dict[str, set[int]] = {}
    for i, c in enumerate(collectors):
        for r in c.records:
            homes.setdefault(r["user"], set()).add(i)
    assert set(homes) == set(users)
    assert all(len(nodes) == 1 for nodes in homes.values())  # one node per key
    assert len({next(iter(n)) for n in homes.values()}) > 1  # keys spread over nodes
    for c in collectors:  # per key, records arrive in order
        for u in users:
            seq = [r["n"] for r in c.records if r["user"] == u]
            assert seq == sorted(seq)
