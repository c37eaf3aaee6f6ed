"""The http input: JSON, NDJSON, gzip, tags, auth, errors, TLS."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import trustme
from input_helpers import BatchCollector as Collector
from input_helpers import starter

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.logging import plugin_logger
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.http import HttpInput, parse_json_records, sanitize_tag


def make_input(collector: Collector, config_dir: Path | None = None, **props: str) -> HttpInput:
    props.setdefault("port", "0")
    props.setdefault("listen", "127.0.0.1")
    origin = Origin("test.conf", 1)
    raw = [RawProperty(k.replace("__", "."), v, origin) for k, v in props.items()]
    opts = (INPUT_COMMON + HttpInput.options).resolve(raw, section="[INPUT] http")
    ctx = InputContext(
        name="http.0",
        plugin="http",
        options=opts,
        emit=collector,
        tag="http.0",
        config_dir=config_dir or Path.cwd(),
        logger=plugin_logger("input", "http", "http.0"),
    )
    return HttpInput(ctx)


@pytest.fixture
def served(running: list[Any]) -> Callable[..., Awaitable[HttpInput]]:
    return starter(running, make_input)


def test_parse_json_forms() -> None:
    assert parse_json_records(b'{"a":1}', "application/json") == [{"a": 1}]
    assert parse_json_records(b'[{"a":1},{"b":2}]', "application/json") == [{"a": 1}, {"b": 2}]
    nd = b'{"a":1}\n\n{"b":2}\n'
    assert parse_json_records(nd, "application/x-ndjson") == [{"a": 1}, {"b": 2}]
    assert parse_json_records(nd, "application/json") == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError, match="line 2"):
        parse_json_records(b'{"a":1}\n{bad', "application/x-ndjson")
    with pytest.raises(ValueError, match="empty"):
        parse_json_records(b"  ", "application/json")


def test_sanitize_tag() -> None:
    assert sanitize_tag("/app.log") == "app.log"
    assert sanitize_tag("/a/b-c") == "a_b_c"
    assert sanitize_tag("/") == ""
    # as Fluent Bit: only the first '/' goes, and each byte outside [A-Za-z0-9_.] is '_'
    assert sanitize_tag("/app/") == "app_"
    assert sanitize_tag("//x") == "_x"
    assert sanitize_tag("/caf\u00c3\u00a9") == "caf__"  # UTF-8 'é' read as two bytes


async def test_object_array_ndjson_and_tags(served: Any) -> None:
    got = Collector()
    plugin = await served(got, tag_key="t")
    base = f"http://127.0.0.1:{plugin.port}"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/app.one", json={"msg": "one"}) as r:
            assert r.status == 201
        async with s.post(f"{base}/", json=[{"msg": "two"}, {"msg": "three", "t": "other"}]) as r:
            assert r.status == 201
        nd = b'{"msg":"four"}\n{"msg":"five"}\n'
        headers = {"Content-Type": "application/x-ndjson"}
        async with s.post(f"{base}/nd", data=nd, headers=headers) as r:
            assert r.status == 201
    assert got.records("app.one") == [{"msg": "one"}]
    assert got.records("http.0") == [{"msg": "two"}]
    assert got.records("other") == [{"msg": "three", "t": "other"}]
    assert got.records("nd") == [{"msg": "four"}, {"msg": "five"}]
    assert plugin.status()["records"] == 5


async def test_explicit_tag_beats_uri_and_gzip_and_code(served: Any) -> None:
    got = Collector()
    plugin = await served(got, tag="fixed", successful_response_code="200")
    body = gzip.compress(orjson.dumps([{"n": i} for i in range(100)]))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{plugin.port}/x"
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        assert r.status == 200
    assert got.records("fixed") == [{"n": i} for i in range(100)]


async def test_bad_json_is_400_and_connection_stays_usable(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    plugin = await served(got)
    url = f"http://127.0.0.1:{plugin.port}/t"
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.post(
            url, data=b"{not json", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
            assert "invalid JSON" in await r.text()
        async with s.post(url, data=b"[1, 2]", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert "JSON object" in await r.text()
        async with s.get(url) as r:
            assert r.status == 400
        async with s.post(url, json={"ok": True}) as r:
            assert r.status == 201
    assert got.records() == [{"ok": True}]
    assert plugin.status()["rejected"] == 3
    # logged by the instance's logger: [input:http:http.0], not [input.http]
    warnings = [r for r in caplog.records if "rejected a request" in r.getMessage()]
    assert warnings and {r.name for r in warnings} == {"relaybit.input:http:http.0"}


async def test_body_over_buffer_max_size_is_413(served: Any) -> None:
    got = Collector()
    plugin = await served(got, buffer_max_size="1k")
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{plugin.port}/t"
        async with s.post(url, json={"x": "y" * 4096}) as r:
            assert r.status == 413
    assert got.records() == []


async def test_basic_auth(served: Any) -> None:
    got = Collector()
    plugin = await served(got, http_user="alice", http_passwd="s3cret")
    url = f"http://127.0.0.1:{plugin.port}/t"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"a": 1}) as r:
            assert r.status == 401
        async with s.post(
            url,
            json={"a": 2},
            headers={"Authorization": aiohttp.encode_basic_auth("alice", "wrong")},
        ) as r:
            assert r.status == 401
        async with s.post(
            url,
            json={"a": 3},
            headers={"Authorization": aiohttp.encode_basic_auth("alice", "s3cret")},
        ) as r:
            assert r.status == 201
    assert got.records() == [{"a": 3}]
    assert "s3cret" not in repr(plugin.ctx.options)


async def test_tls_server(served: Any, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    got = Collector()
    plugin = make_input(
        got, tmp_path, tls="on", tls__crt_file="server.crt", tls__key_file="server.key"
    )
    await plugin.start()
    try:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with aiohttp.ClientSession() as s:
            url = f"https://127.0.0.1:{plugin.port}/secure"
            async with s.post(url, json={"tls": 1}, ssl=client_ctx) as r:
                assert r.status == 201
    finally:
        await plugin.stop()
    assert got.records("secure") == [{"tls": 1}]


def test_bad_success_code_is_config_error() -> None:
    with pytest.raises(ConfigError, match="successful_response_code"):
        make_input(Collector(), successful_response_code="202")


async def test_a_lone_surrogate_escape_is_accepted_as_fluent_bit_writes_it(served: Any) -> None:
    # orjson refuses "\ud800" without its pair: the body was answered 400 and lost; Fluent
    # Bit 5.1.1 answers 201 and writes U+FFFD (EF BF BD), an escaped pair as its character
    got = Collector()
    plugin = await served(got)
    base = f"http://127.0.0.1:{plugin.port}"
    bodies = [
        (b'{"msg": "\\ud800", "pair": "\\ud83d\\ude00", "\\udc80k": 1}', "application/json"),
        (b'[{"msg": "a\\udfffb"}, {"msg": "ok"}]', "application/json"),
        (b'{"msg": "x\\ud800"}\n{"msg": "y"}\n', "application/x-ndjson"),
    ]
    async with aiohttp.ClientSession() as s:
        for body, ctype in bodies:
            headers = {"Content-Type": ctype}
            async with s.post(f"{base}/t", data=body, headers=headers) as r:
                assert r.status == 201, await r.text()
        async with s.post(f"{base}/t", data=b'{"msg": "\\ud800", bad}') as r:
            assert r.status == 400  # still bad JSON with orjson's reason
            assert "surrogate" in await r.text()
        deep = b'{"a":' * 700 + b'"\\ud800"' + b"}" * 700  # too deep for the stdlib: 400
        async with s.post(f"{base}/t", data=deep) as r:
            assert r.status == 400 and "surrogate" in await r.text()
    assert got.records("t") == [
        {"msg": "\ufffd", "pair": "\U0001f600", "\ufffdk": 1},
        {"msg": "a\ufffdb"},
        {"msg": "ok"},
        {"msg": "x\ufffd"},
        {"msg": "y"},
    ]


async def test_a_lone_surrogate_record_is_delivered_by_a_real_agent(tmp_path: Path) -> None:
    # http input -> its processors -> the file output, as Fluent Bit 5.1.1 writes it
    from relaybit.agent import Agent
    from relaybit.config.loader import load_config
    from relaybit.testing import wait_for

    conf = tmp_path / "agent.yaml"
    conf.write_text(
        "service:\n  flush: 0.1\n"
        "pipeline:\n"
        "  inputs:\n"
        "    - name: http\n      listen: 127.0.0.1\n      port: 0\n"
        "      processors:\n        logs:\n"
        "          - name: content_modifier\n            action: insert\n"
        "            key: seen\n            value: 'yes'\n"
        "  outputs:\n"
        f"    - name: file\n      match: '*'\n      path: {tmp_path}\n      file: out.log\n"
        "      format: plain\n"
    )
    agent = Agent(load_config(conf))
    await agent.start()
    out = tmp_path / "out.log"
    try:
        port = agent.inputs["http.0"].port  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port}/app"
        async with aiohttp.ClientSession() as s, s.post(url, data=b'{"msg": "cut \\ud83d"}') as r:
            assert r.status == 201
        await wait_for(lambda: out.exists() and out.read_bytes().endswith(b"\n"))
    finally:
        await agent.stop()
    assert out.read_bytes() == b'{"msg":"cut \xef\xbf\xbd","seen":"yes"}\n'
