"""The es output: bulk items, partial failures re-sent alone, failover across es inputs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
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
from relaybit.plugins.inputs.elasticsearch import ElasticsearchInput
from relaybit.plugins.outputs.encoder_pool import EncoderPool
from relaybit.plugins.outputs.es import output as es_output
from relaybit.plugins.outputs.es.bulk import (
    BulkEncoder,
    build_item,
    decode_chunk,
    encode_items,
    generated_id,
    read_bulk_response,
)
from relaybit.plugins.outputs.es.options import decode_cloud_id
from relaybit.plugins.outputs.es.output import ElasticsearchOutput
from relaybit.plugins.outputs.es.settings import EsSettings
from relaybit.plugins.outputs.http.encoder import gzip_body
from relaybit.upstream.node import Node, UpstreamSpec

ORIGIN = Origin("es.conf", 7)
T0 = EventTime(1700000000, 123_456_789)  # 2023-11-14T22:13:20.123Z


def props(**kv: str) -> list[RawProperty]:
    return [RawProperty(k, v, ORIGIN) for k, v in kv.items()]


def make_node(name: str, port: int, **kv: str) -> Node:
    return Node(name=name, host="127.0.0.1", port=port, properties={p.key: p for p in props(**kv)})


def make_output(
    nodes: tuple[Node, ...] | None = None, service: dict[str, Any] | None = None, **kv: str
) -> ElasticsearchOutput:
    opts = (OUTPUT_COMMON + ElasticsearchOutput.options).resolve(props(**kv), section="[OUTPUT] es")
    spec = UpstreamSpec(name="es-up", nodes=nodes) if nodes else None
    ctx = OutputContext(
        name="es.0",
        plugin="es",
        options=opts,
        upstream=spec,
        logger=plugin_logger("output", "es", "es.0"),
        service=service or {},
    )
    return ElasticsearchOutput(ctx)


def chunk_of(records: list[dict[str, Any]], tag: str = "app") -> Chunk:
    return Chunk(tag=tag, data=pack_entries((T0, r) for r in records), records=len(records))


def lines(item: bytes) -> tuple[Any, Any]:
    action, source = item.splitlines()
    return orjson.loads(action), orjson.loads(source)


# -- pure bulk logic ------------------------------------------------------------------


def test_build_item_defaults_match_fluent_bit() -> None:
    action, source = lines(build_item(T0, {"msg": "hi"}, "app", EsSettings(), 0.0))
    assert action == {"create": {"_index": "fluent-bit", "_type": "_doc"}}
    assert source == {"@timestamp": "2023-11-14T22:13:20.123Z", "msg": "hi"}


def test_build_item_options() -> None:
    settings = EsSettings(
        logstash_format=True,
        logstash_prefix_key="svc",
        include_tag_key=True,
        replace_dots=True,
        suppress_type_name=True,
        id_key="rid",
        time_key_nanos=True,
        write_operation="upsert",
    )
    action, payload = lines(
        build_item(T0, {"svc": "api", "a.b": {"c.d": 1}, "rid": 42}, "t", settings, 0.0)
    )
    assert action == {"update": {"_index": "api-2023.11.14", "_id": "42"}}
    assert payload == {
        "doc": {
            "@timestamp": "2023-11-14T22:13:20.123456789Z",
            "svc": "api",
            "a_b": {"c_d": 1},
            "rid": 42,
            "_flb-key": "t",
        },
        "doc_as_upsert": True,
    }
    gen = EsSettings(generate_id=True, write_operation="index", time_key="ts")
    a1, s1 = lines(build_item(T0, {"ts": "mine"}, "t", gen, 0.0))
    a2, _ = lines(build_item(T0, {"ts": "mine"}, "t", gen, 99.0))
    assert a1["index"]["_id"] == a2["index"]["_id"]  # stable: a re-send is a 409, not a copy
    assert s1 == {"ts": "mine"}  # an existing time_key is kept, not duplicated


def test_read_bulk_response_sorts_items() -> None:
    body = orjson.dumps(
        {
            "took": 3,
            "errors": True,
            "items": [
                {"create": {"status": 201}},
                {
                    "create": {
                        "status": 429,
                        "error": {"type": "es_rejected_execution_exception", "reason": "queue"},
                    }
                },
                {
                    "create": {
                        "status": 400,
                        "error": {"type": "mapper_parsing_exception", "reason": "bad"},
                    }
                },
                {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
                {"index": {"status": 503}},
            ],
        }
    )
    out = read_bulk_response(body, [10, 11, 12, 13, 14])
    assert out.delivered == [10, 13]
    assert out.conflicts == 1
    assert [(e.index, e.status) for e in out.retryable] == [(11, 429), (14, 503)]
    assert [(e.index, e.status) for e in out.failed] == [(12, 400)]
    assert "mapper_parsing_exception: bad" in out.failed[0].reason
    with pytest.raises(ValueError, match="2 items for 1"):
        read_bulk_response(orjson.dumps({"items": [{}, {}]}), [0])
    with pytest.raises(ValueError, match="not JSON"):
        read_bulk_response(b"<html>", [0])


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match=r"es.conf:7.*write_operation update needs id_key"):
        make_output(write_operation="update")
    host, port = decode_cloud_id("name:ZXUtd2VzdC0xLmF3cy5mb3VuZC5pbyRhYmMxMjMkZGVmNDU2")
    assert (host, port) == ("abc123.eu-west-1.aws.found.io", 443)
    out = make_output(
        cloud_id="name:ZXUtd2VzdC0xLmF3cy5mb3VuZC5pbyRhYmMxMjMkZGVmNDU2", cloud_auth="elastic:pw"
    )
    assert out.ctx.options["host"] == "abc123.eu-west-1.aws.found.io"
    assert out.ctx.options["tls"] is True
    assert "pw" not in repr(out.ctx.options)


# -- partial failures against a bulk test server ----------------------------------------


class BulkServer:
    """Follows the documented bulk response format; records marked ``fail`` are refused.

    ``fail: 429`` is refused with ``es_rejected_execution_exception`` the first
    ``rejections`` times it is seen (across servers sharing ``seen``), ``fail: 400``
    always with a mapping error.
    """

    def __init__(self, seen: dict[int, int], rejections: int = 1) -> None:
        self.seen = seen
        self.rejections = rejections
        self.bulks: list[list[int]] = []  # the record numbers of each request
        self.encodings: list[str] = []  # each request's Content-Encoding
        self.stored: list[int] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _bulk(self, request: web.Request) -> web.Response:
        self.encodings.append(request.headers.get("Content-Encoding", ""))
        body = (await request.read()).splitlines()  # aiohttp decompresses gzip
        items, numbers = [], []
        for action_line, source_line in zip(body[::2], body[1::2], strict=True):
            (op,) = orjson.loads(action_line)
            source = orjson.loads(source_line)
            n = source["n"]
            numbers.append(n)
            self.seen[n] = self.seen.get(n, 0) + 1
            if source.get("fail") == 429 and self.seen[n] <= self.rejections:
                error = {"type": "es_rejected_execution_exception", "reason": "queue full"}
                items.append({op: {"_index": "i", "status": 429, "error": error}})
            elif source.get("fail") == 400:
                error = {"type": "mapper_parsing_exception", "reason": f"failed to parse {n}"}
                items.append({op: {"_index": "i", "status": 400, "error": error}})
            else:
                self.stored.append(n)
                items.append({op: {"_index": "i", "_id": str(n), "status": 201}})
        self.bulks.append(numbers)
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return web.json_response({"took": 1, "errors": errors, "items": items})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/_bulk", self._bulk)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def mixed_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for n in range(30):
        record: dict[str, Any] = {"n": n}
        if n % 10 == 3:
            record["fail"] = 429
        elif n % 10 == 7:
            record["fail"] = 400
        records.append(record)
    return records


async def test_partial_failure_resends_only_429_items(
    caplog: pytest.LogCaptureFixture, pool: EncoderPool | None
) -> None:
    seen: dict[int, int] = {}
    servers = [BulkServer(seen), BulkServer(seen)]
    for s in servers:
        await s.start()
    out = make_output(
        tuple(make_node(f"es{i}", s.port) for i, s in enumerate(servers)),
        service={"encoder_pool": pool},
    )
    await out.start()
    try:
        with caplog.at_level(logging.ERROR, logger="relaybit"):
            assert await out.flush(chunk_of(mixed_records())) is FlushResult.OK
    finally:
        await out.stop()
        for s in servers:
            await s.stop()
    first, second = servers
    assert first.bulks == [list(range(30))]
    assert second.bulks == [[3, 13, 23]]  # the 429 items alone, on the next node
    stored = first.stored + second.stored
    expected = [n for n in range(30) if n % 10 != 7]
    assert sorted(stored) == expected  # nothing duplicated, nothing missing
    assert len(stored) == len(set(stored))
    assert [seen[n] for n in (7, 17, 27)] == [1, 1, 1]  # 400 items never re-sent
    error_records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert {r.name for r in error_records} == {"relaybit.output:es:es.0"}  # [output:es:es.0]
    errors = [r.getMessage() for r in error_records]
    assert len(errors) == 1  # logged once, with the reason
    assert "3 records refused" in errors[0] and "mapper_parsing_exception" in errors[0]
    status = out.status()
    assert status["failed_records"] == 3
    assert status["delivered_records"] == 27
    assert status["item_retries"] == 3
    assert status["pending_chunks"] == 0
    if pool is not None:  # the first body was written there, the re-send here
        assert pool.status()["chunks"] == 1 and pool.status()["in_agent"] == 0


async def test_pending_items_survive_engine_retry() -> None:
    seen: dict[int, int] = {}
    server = BulkServer(seen, rejections=2)  # one node, 429 twice for the marked items
    await server.start()
    out = make_output(None, port=str(server.port))
    await out.start()
    chunk = chunk_of(mixed_records())
    try:
        assert await out.flush(chunk) is FlushResult.RETRY
        assert out.pending_chunks() == 1
        assert await out.flush(chunk) is FlushResult.RETRY
        assert await out.flush(chunk) is FlushResult.OK
    finally:
        await out.stop()
        await server.stop()
    assert server.bulks[1:] == [[3, 13, 23], [3, 13, 23]]
    assert sorted(server.stored) == [n for n in range(30) if n % 10 != 7]
    assert out.pending_chunks() == 0


async def test_whole_request_400_is_error() -> None:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": "bad"}, status=400)

    app = web.Application()
    app.router.add_post("/_bulk", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    out = make_output(None, port=str(runner.addresses[0][1]))
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.ERROR
    finally:
        await out.stop()
        await runner.cleanup()
    assert out.status()["rejected"] == 1
    assert out.pending_chunks() == 0


# -- es output -> three relaybit elasticsearch inputs, one stopped mid-run ---------------


class Collector:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        self.records.extend(r for _, r in iter_entries(data))


async def start_es_input(collector: Collector) -> ElasticsearchInput:
    opts = (INPUT_COMMON + ElasticsearchInput.options).resolve(
        props(port="0", listen="127.0.0.1"), section="[INPUT] elasticsearch"
    )
    plugin = ElasticsearchInput(
        InputContext(
            name="es.in",
            plugin="elasticsearch",
            options=opts,
            emit=collector,
            config_dir=Path.cwd(),
        )
    )
    await plugin.start()
    return plugin


async def test_three_es_inputs_one_stopped_in_the_middle() -> None:
    collectors = [Collector() for _ in range(3)]
    inputs = [await start_es_input(c) for c in collectors]
    nodes = tuple(make_node(f"es{i}", p.port) for i, p in enumerate(inputs))
    nodes = (nodes[0], make_node("es1", inputs[1].port, index="node-one"), nodes[2])
    out = make_output(nodes, index="main")
    await out.start()
    results = []
    try:
        for c in range(30):
            if c == 10:
                await inputs[1].stop()
            chunk = chunk_of([{"c": c, "i": i, "n": c * 100 + i} for i in range(20)])
            results.append(await out.flush(chunk))
    finally:
        await out.stop()
        for plugin in inputs:
            await plugin.stop()
    assert results == [FlushResult.OK] * 30
    got = [r["n"] for c in collectors for r in c.records]
    expected = {c * 100 + i for c in range(30) for i in range(20)}
    assert set(got) == expected  # every record arrived
    duplicates = len(got) - len(set(got))
    assert duplicates == 0  # the node stopped between flushes: nothing in flight
    before = {r["c"] for r in collectors[1].records}
    assert before and max(before) < 10
    indices = {r["@meta"]["create"]["_index"] for r in collectors[1].records}
    assert indices == {"node-one"}  # node key overrides the output's index
    assert {r["@meta"]["create"]["_index"] for r in collectors[0].records} == {"main"}


async def test_node_stopped_while_flushes_are_in_flight() -> None:
    collectors = [Collector() for _ in range(3)]
    inputs = [await start_es_input(c) for c in collectors]
    out = make_output(tuple(make_node(f"es{i}", p.port) for i, p in enumerate(inputs)))
    await out.start()
    chunks = [chunk_of([{"n": c * 100 + i} for i in range(50)]) for c in range(24)]
    try:
        first = await asyncio.gather(*(out.flush(ch) for ch in chunks[:12]), inputs[1].stop())
        rest = await asyncio.gather(*(out.flush(ch) for ch in chunks[12:]))
    finally:
        await out.stop()
        for plugin in inputs:
            await plugin.stop()
    results = [*first[:12], *rest]
    retry = [ch for ch, r in zip(chunks, results, strict=True) if r is not FlushResult.OK]
    assert all(r is FlushResult.RETRY for r in results if r is not FlushResult.OK)
    assert not retry  # two healthy nodes took every chunk within the flush
    got = [r["n"] for c in collectors for r in c.records]
    assert set(got) == {c * 100 + i for c in range(24) for i in range(50)}
    duplicates = len(got) - len(set(got))
    assert duplicates <= 50 * 4  # at most the 4 chunks in flight on the stopped node


async def test_reload_applies_a_changed_per_node_index(tmp_path: Path) -> None:
    """SIGHUP with the same node (name, host, port) but a new ``index``: the next
    bulk request goes to the new index (settings were cached by name and address)."""
    actions: list[dict[str, Any]] = []

    async def bulk(request: web.Request) -> web.Response:
        body = (await request.read()).splitlines()
        items = []
        for action_line in body[::2]:
            action = orjson.loads(action_line)
            actions.append(action)
            items.append({op: {"status": 201} for op in action})
        return web.json_response({"took": 1, "errors": False, "items": items})

    app = web.Application()
    app.router.add_post("/_bulk", bulk)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    path = tmp_path / "upstream.conf"

    def write(index: str) -> None:
        path.write_text(
            f"[UPSTREAM]\n    name es-up\n[NODE]\n    name es0\n    host 127.0.0.1\n"
            f"    port {port}\n    index {index}\n"
        )

    from relaybit.upstream.spec import load_upstream_file

    write("first")
    opts = (OUTPUT_COMMON + ElasticsearchOutput.options).resolve([], section="[OUTPUT] es")
    ctx = OutputContext(name="es.0", plugin="es", options=opts, upstream=load_upstream_file(path))
    out = ElasticsearchOutput(ctx)
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        write("second")
        out.reload_upstream()
        assert await out.flush(chunk_of([{"n": 2}])) is FlushResult.OK
    finally:
        await out.stop()
        await runner.cleanup()
    assert [a["create"]["_index"] for a in actions] == ["first", "second"]


async def test_a_chunk_no_node_took_leaves_no_state_behind() -> None:
    """When every node is down nothing of the chunk landed: keeping its decoded
    records for a retry that may never come (the engine may drop it) only holds
    memory, up to 4096 whole decoded chunks during an outage."""
    from relaybit.testing import closed_port

    out = make_output(None, port=str(closed_port()))
    await out.start()
    try:
        assert await out.flush(chunk_of(mixed_records())) is FlushResult.RETRY
        assert out.pending_chunks() == 0
    finally:
        await out.stop()


def test_errors_false_counts_every_item_delivered_without_reading_them() -> None:
    body = orjson.dumps({"took": 1, "errors": False, "items": [{"create": {"status": 201}}] * 3})
    assert read_bulk_response(body, [4, 7, 9]).delivered == [4, 7, 9]
    with pytest.raises(ValueError, match="3 items for 2"):
        read_bulk_response(body, [0, 1])


@pytest.mark.parametrize(
    "settings",
    [EsSettings(), EsSettings(logstash_format=True, include_tag_key=True, generate_id=True)],
)
def test_a_re_send_of_some_items_is_those_items(settings: EsSettings) -> None:
    records = [{"n": i, "msg": "x"} for i in range(10)] + [{"@timestamp": "own", "n": 10}]
    chunk = chunk_of(records)
    entries = decode_chunk(chunk.data)
    assert entries.fast
    every = encode_items(chunk.data, "app", settings, 5.0)
    some = [1, 4, 10]
    body = BulkEncoder(settings).encode(entries, some, "app", 5.0)
    assert body == b"".join(every[i] for i in some)


def test_generate_id_in_a_batch_is_the_id_of_each_record_alone() -> None:
    records: list[dict[str, Any]] = [
        {"n": i, "f": 0.5 + i, "s": "ünï ✓", "nested": {"a": [1, None, True]}} for i in range(20)
    ]
    settings = EsSettings(generate_id=True)
    exponent = {"big": 1e20, "text": "1e5 not a number"}  # orjson writes 1e+20
    for batch in (records, [*records, exponent]):
        chunk = chunk_of(batch)
        items = encode_items(chunk.data, "t", settings, 0)
        ids = [lines(item)[0]["create"]["_id"] for item in items]
        assert ids == [generated_id(t, r) for t, r in iter_entries(chunk.data)]


async def test_a_chunk_is_decoded_and_written_once_when_it_all_lands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = BulkEncoder.encode

    def counting(self: BulkEncoder, *args: Any) -> bytes:
        calls.append(1)
        return real(self, *args)

    monkeypatch.setattr(BulkEncoder, "encode", counting)
    seen: dict[int, int] = {}
    server = BulkServer(seen)
    await server.start()
    out = make_output((make_node("es0", server.port), make_node("es1", server.port)))
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": n} for n in range(5)])) is FlushResult.OK
    finally:
        await out.stop()
        await server.stop()
    assert calls == [1] and server.stored == [0, 1, 2, 3, 4]


async def test_gzip_bodies_are_compressed_once_and_re_sends_too(
    caplog: pytest.LogCaptureFixture, pool: EncoderPool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compress gzip``: the whole body is written compressed once (in the encoder
    process when there is one) and sent as it is to each node that gets it; the 429
    items go again, compressed, and trace_error shows the request as text."""
    seen: dict[int, int] = {}
    servers = [BulkServer(seen), BulkServer(seen)]
    for s in servers:
        await s.start()
    out = make_output(
        tuple(make_node(f"es{i}", s.port) for i, s in enumerate(servers)),
        service={"encoder_pool": pool},
        compress="gzip",
        trace_error="on",
    )
    compressed: list[int] = []  # sizes of the bodies compressed in this process

    def counting_gzip(body: bytes) -> bytes:
        compressed.append(len(body))
        return gzip_body(body)

    monkeypatch.setattr(es_output, "gzip_body", counting_gzip)
    await out.start()
    try:
        with caplog.at_level(logging.ERROR, logger="relaybit"):
            assert await out.flush(chunk_of(mixed_records())) is FlushResult.OK
    finally:
        await out.stop()
        for s in servers:
            await s.stop()
    first, second = servers
    assert first.encodings == ["gzip"] and second.encodings == ["gzip"]
    # the whole body here only without a pool; the 3 items' re-send always here
    assert len(compressed) == (2 if pool is None else 1)
    assert first.bulks == [list(range(30))]
    assert second.bulks == [[3, 13, 23]]
    assert sorted(first.stored + second.stored) == [n for n in range(30) if n % 10 != 7]
    traces = [r.getMessage() for r in caplog.records if "request was" in r.getMessage()]
    assert len(traces) == 1 and '"n":7' in traces[0]  # the request, readable
    if pool is not None:
        assert pool.status()["chunks"] == 1
