"""The elasticsearch input: the official client, bulk parsing, errors."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from elasticsearch import Elasticsearch, helpers
from input_helpers import BatchCollector as Collector
from input_helpers import starter

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.logging import plugin_logger
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.elasticsearch import ElasticsearchInput, parse_bulk


def make_input(collector: Collector, **props: str) -> ElasticsearchInput:
    props.setdefault("port", "0")
    props.setdefault("listen", "127.0.0.1")
    origin = Origin("test.conf", 1)
    raw = [RawProperty(k, v, origin) for k, v in props.items()]
    opts = (INPUT_COMMON + ElasticsearchInput.options).resolve(raw, section="[INPUT] es")
    ctx = InputContext(
        name="elasticsearch.0",
        plugin="elasticsearch",
        options=opts,
        emit=collector,
        tag="es.in",
        config_dir=Path.cwd(),
        logger=plugin_logger("input", "elasticsearch", "elasticsearch.0"),
    )
    return ElasticsearchInput(ctx)


@pytest.fixture
def served(running: list[Any]) -> Callable[..., Awaitable[ElasticsearchInput]]:
    return starter(running, make_input)


def test_parse_bulk_actions() -> None:
    body = b"\n".join(
        [
            b'{"index":{"_index":"a","_id":"1"}}',
            b'{"m":1}',
            b'{"create":{}}',
            b'{"m":2}',
            b'{"delete":{"_index":"a","_id":"1"}}',
            b'{"update":{"_id":"1"}}',
            b'{"doc":{"m":3}}',
            b"",
        ]
    )
    res = parse_bulk(body, default_index="dflt", meta_key="@meta")
    assert res.records == [
        {"m": 1, "@meta": {"index": {"_index": "a", "_id": "1"}}},
        {"m": 2, "@meta": {"create": {}}},
    ]
    ops = [next(iter(i)) for i in res.items]
    assert ops == ["index", "create", "delete", "update"]
    assert [next(iter(i.values()))["status"] for i in res.items] == [201, 201, 404, 403]
    assert res.items[1]["create"]["_index"] == "dflt"
    assert res.errors


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"index":{}}\n{bad json}\n', "line 2"),
        (b'{"index":{}}\n', "no source line"),
        (b'{"explode":{}}\n{}\n', "unknown bulk action"),
        (b"[1,2]\n", "expected an action"),
    ],
)
def test_parse_bulk_rejects(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_bulk(body, default_index=None, meta_key="@meta")


async def test_official_client_helpers_bulk(served: Any) -> None:
    got = Collector()
    plugin = await served(got, tag_key="service")
    docs = [
        {"_index": "logs", "_source": {"n": i, **({"service": "api"} if i % 2 else {})}}
        for i in range(50)
    ]

    def send() -> tuple[int, Any]:
        with Elasticsearch(f"http://127.0.0.1:{plugin.port}", request_timeout=10) as es:
            info = es.info()
            assert info["tagline"] == "You Know, for Search"
            assert info["version"]["number"] == "8.0.0"
            return helpers.bulk(es, docs, chunk_size=20)  # type: ignore[no-any-return]

    ok, errors = await asyncio.to_thread(send)
    assert ok == 50
    assert errors == []
    records = got.records()
    assert sorted(r["n"] for r in records) == list(range(50))
    assert all(r["@meta"]["index"]["_index"] == "logs" for r in records)
    assert sorted(r["n"] for r in got.records("api")) == list(range(1, 50, 2))
    assert sorted(r["n"] for r in got.records("es.in")) == list(range(0, 50, 2))


async def test_endpoints_and_headers(served: Any, caplog: pytest.LogCaptureFixture) -> None:
    got = Collector()
    plugin = await served(got, hostname="collector.local")
    base = f"http://127.0.0.1:{plugin.port}"
    async with aiohttp.ClientSession() as s:
        async with s.head(f"{base}/") as r:
            assert r.status == 200
            assert r.headers["X-Elastic-Product"] == "Elasticsearch"
        async with s.get(f"{base}/_nodes/http") as r:
            nodes = (await r.json())["nodes"]
            (node,) = nodes.values()
            assert node["http"]["publish_address"] == f"collector.local:{plugin.port}"
        body = gzip.compress(b'{"create":{}}\n{"a":1}\n')
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        async with s.post(f"{base}/myindex/_bulk", data=body, headers=headers) as r:
            assert r.status == 200
            assert r.headers["X-Elastic-Product"] == "Elasticsearch"
            doc = await r.json()
            assert doc["errors"] is False
            assert doc["items"][0]["create"]["_index"] == "myindex"
            assert doc["items"][0]["create"]["status"] == 201
        async with s.post(f"{base}/_bulk", data=b'{"index":{}}\n{oops\n') as r:
            assert r.status == 400
            assert "line 2" in (await r.json())["error"]["reason"]
        async with s.post(f"{base}/a/b/c", data=b"{}") as r:
            assert r.status == 400
    assert got.records() == [{"a": 1, "@meta": {"create": {}}}]
    # logged by the instance's logger ([input:elasticsearch:elasticsearch.0])
    warnings = [r for r in caplog.records if "rejected a request" in r.getMessage()]
    assert warnings and {r.name for r in warnings} == {
        "relaybit.input:elasticsearch:elasticsearch.0"
    }


async def test_bulk_body_too_large(served: Any) -> None:
    got = Collector()
    plugin = await served(got, buffer_max_size="1k")
    body = orjson.dumps({"index": {}}) + b"\n" + orjson.dumps({"x": "y" * 2048}) + b"\n"
    url = f"http://127.0.0.1:{plugin.port}/_bulk"
    async with aiohttp.ClientSession() as s, s.post(url, data=body) as r:
        assert r.status == 413
    assert got.records() == []


async def test_a_lone_surrogate_escape_is_indexed_as_fluent_bit_writes_it(served: Any) -> None:
    # Fluent Bit 5.1.1 writes U+FFFD for it; the bulk line was refused as invalid JSON
    got = Collector()
    plugin = await served(got)
    body = b'{"index":{}}\n{"msg":"\\ud800es"}\n{"index":{}}\n{"msg":"ok"}\n'
    headers = {"Content-Type": "application/x-ndjson"}
    url = f"http://127.0.0.1:{plugin.port}/_bulk"
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["errors"] is False
    assert [r["msg"] for r in got.records()] == ["\ufffdes", "ok"]
