"""The http output as Fluent Bit 5.1.1's out_http: timeouts, malformed 2xx bodies, OAuth2,
and every key it declares (es too).

Real receivers on 127.0.0.1: raw asyncio servers that answer byte for byte what a
broken receiver sends, an aiohttp token endpoint (client credentials: basic,
post, private_key_jwt checked with the certificate's public key) and an aiohttp
receiver that accepts only the tokens it issued.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.logging import plugin_logger
from relaybit.net.oauth2_client import OAuth2Settings, TokenSource
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, FlushResult, OutputContext
from relaybit.plugins.outputs.es.output import ElasticsearchOutput
from relaybit.plugins.outputs.http.output import HttpOutput
from relaybit.testing import FakeClock
from relaybit.upstream.node import Node, UpstreamSpec

ORIGIN = Origin("fb5.conf", 9)
SECRET = "s3cr3t-client-secret"


def props(**kv: str) -> list[RawProperty]:
    return [RawProperty(k.replace("__", "."), v, ORIGIN) for k, v in kv.items()]


def chunk_of(records: list[dict[str, Any]], tag: str = "app") -> Chunk:
    data = pack_entries((EventTime(1700000000, 500_000_000), r) for r in records)
    return Chunk(tag=tag, data=data, records=len(records))


class Scripted:
    """An aiohttp receiver answering a fixed status, recording (headers, body) per request."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{p:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def node(name: str, port: int) -> Node:
    return Node(name=name, host="127.0.0.1", port=port)


def make_output(
    nodes: tuple[Node, ...], config_dir: Path | None = None, clock: Any = None, **kv: str
) -> HttpOutput:
    kv.setdefault("format", "json_lines")
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(props(**kv), section="[OUTPUT] http")
    extra = {"clock": clock} if clock is not None else {}
    ctx = OutputContext(
        name="http.0",
        plugin="http",
        options=opts,
        upstream=UpstreamSpec(name="up", nodes=nodes),
        config_dir=config_dir or Path.cwd(),
        logger=plugin_logger("output", "http", "http.0"),
        **extra,
    )
    return HttpOutput(ctx)


# -- a raw receiver: answers exactly the bytes a broken server sends -------------------


class RawReceiver:
    """Reads each request whole (Content-Length), then runs ``answer(writer)``."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.answer = answer
        self.requests: list[tuple[bytes, bytes]] = []  # (request line, body)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((head.split(b"\r\n", 1)[0], body))
                await self.answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def fixed(payload: bytes) -> Callable[[asyncio.StreamWriter], Awaitable[None]]:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()

    return answer


OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
CHUNK_SIZE_LEADING_SPACE = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nok\r\n0\r\n\r\n"
)
BROKEN_TRAILER = (
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a header\r\n\r\n"
)


AFTER_100_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n" + CHUNK_SIZE_LEADING_SPACE


@pytest.mark.parametrize(
    "payload",
    [CHUNK_SIZE_LEADING_SPACE, BROKEN_TRAILER, AFTER_100_CONTINUE],
    ids=["chunk-size", "trailer", "after-100"],
)
async def test_a_2xx_with_a_malformed_body_is_delivered_once(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = RawReceiver(fixed(payload))
    await receiver.start()
    out = make_output((node("broken", receiver.port),))
    await out.start()
    try:
        with caplog.at_level(logging.WARNING):
            assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
            assert await out.flush(chunk_of([{"n": 2}])) is FlushResult.OK
        # the status line decided: each chunk went out once, no duplicate
        assert [b.count(b"\n") for _, b in receiver.requests] == [1, 1]
        assert b'"n":1' in receiver.requests[0][1] and b'"n":2' in receiver.requests[1][1]
        assert out.malformed == 2
        lines = [r.getMessage() for r in caplog.records if "malformed body" in r.getMessage()]
        assert len(lines) == 1  # once per node, not per flush
        assert "counted as delivered" in lines[0]
    finally:
        await out.stop()
        await receiver.stop()


async def test_a_5xx_with_a_malformed_body_is_a_failure_that_fails_over() -> None:
    bad = RawReceiver(
        fixed(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nno\r\n0\r\n\r\n")
    )
    good = RawReceiver(fixed(OK_EMPTY))
    await bad.start()
    await good.start()
    out = make_output((node("bad", bad.port), node("good", good.port)))
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        assert len(bad.requests) == 1 and len(good.requests) == 1
    finally:
        await out.stop()
        await bad.stop()
        await good.stop()


async def never_ends(writer: asyncio.StreamWriter) -> None:
    """200, then a chunked body whose end never comes."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
    await writer.drain()
    await asyncio.Event().wait()


async def trickles(writer: asyncio.StreamWriter) -> None:
    """200, then one byte of an endless chunk every 0.1 s: never idle, never done."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\n")
    while True:
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("answer", "keys"),
    [
        (never_ends, {"http__read_idle_timeout": "0.5s", "http__response_timeout": "30s"}),
        (trickles, {"http__response_timeout": "1s"}),
    ],
    ids=["idle", "response"],
)
async def test_a_response_that_never_ends_times_out_and_fails_over(
    answer: Callable[[asyncio.StreamWriter], Awaitable[None]], keys: dict[str, str]
) -> None:
    hanging = RawReceiver(answer)
    good = RawReceiver(fixed(OK_EMPTY))
    await hanging.start()
    await good.start()
    out = make_output((node("hanging", hanging.port), node("good", good.port)), **keys)
    await out.start()
    try:
        started = time.monotonic()
        result = await asyncio.wait_for(out.flush(chunk_of([{"n": 1}])), 10)
        assert result is FlushResult.OK
        assert time.monotonic() - started < 5
        assert len(hanging.requests) == 1 and len(good.requests) == 1
        assert b'"n":1' in good.requests[0][1]
    finally:
        await out.stop()
        await hanging.stop()
        await good.stop()


# -- OAuth2 client credentials -------------------------------------------------------


class TokenEndpoint:
    """A token endpoint and a receiver that accepts only the tokens it issued."""

    def __init__(self, expires_in: int = 3600, cert_pem: bytes | None = None) -> None:
        self.expires_in = expires_in
        self.cert_pem = cert_pem
        self.token_requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.valid: set[str] = set()
        self.data_requests: list[tuple[str, bytes]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth/token"

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            return base64.b64decode(auth[6:]).decode() == f"agent:{SECRET}"
        if "client_assertion" in form:
            assert self.cert_pem is not None
            cert = x509.load_pem_x509_certificate(self.cert_pem)
            header = jwt.get_unverified_header(form["client_assertion"])
            assert header["alg"] == "RS256"
            assert header["kid"] == cert.fingerprint(hashes.SHA1()).hex().upper()
            claims = jwt.decode(
                form["client_assertion"],
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self.url,
            )
            assert claims["iss"] == claims["sub"] == "agent" == form["client_id"]
            assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
            return form["client_assertion_type"].endswith("jwt-bearer")
        return form.get("client_id") == "agent" and form.get("client_secret") == SECRET

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        headers = dict(request.headers)
        self.token_requests.append((form, headers))
        if form.get("grant_type") != "client_credentials" or not self._client_ok(form, headers):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"tok-{len(self.token_requests)}"
        self.valid.add(token)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        )

    async def _data(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.data_requests.append((auth, await request.read()))
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid:
            return web.Response(status=401)
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/", self._data)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def oauth_keys(endpoint: TokenEndpoint, **kv: str) -> dict[str, str]:
    return {
        "oauth2__enable": "on",
        "oauth2__token_url": endpoint.url,
        "oauth2__client_id": "agent",
        "oauth2__client_secret": SECRET,
        "oauth2__scope": "logs.write",
        **kv,
    }


@pytest.mark.parametrize("method", ["basic", "post"])
async def test_oauth2_token_is_fetched_once_cached_and_never_logged(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = TokenEndpoint()
    await endpoint.start()
    out = make_output(
        (node("api", endpoint.port),),
        **oauth_keys(endpoint, oauth2__auth_method=method, oauth2__user_agent="relaybit-test"),
    )
    await out.start()
    try:
        with caplog.at_level(logging.DEBUG):
            for n in range(3):
                assert await out.flush(chunk_of([{"n": n}])) is FlushResult.OK
        assert len(endpoint.token_requests) == 1
        form, headers = endpoint.token_requests[0]
        assert form["scope"] == "logs.write" and headers["User-Agent"] == "relaybit-test"
        assert ("Authorization" in headers) == (method == "basic")
        assert [auth for auth, _ in endpoint.data_requests] == ["Bearer tok-1"] * 3
        text = caplog.text + repr(out.ctx.options) + repr(out._oauth)
        assert SECRET not in text and "tok-1" not in text
    finally:
        await out.stop()
        await endpoint.stop()


async def test_oauth2_a_401_refreshes_the_token_once() -> None:
    endpoint = TokenEndpoint()
    await endpoint.start()
    out = make_output((node("api", endpoint.port),), **oauth_keys(endpoint))
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        endpoint.valid.clear()  # the receiver revokes tok-1
        assert await out.flush(chunk_of([{"n": 2}])) is FlushResult.OK
        assert len(endpoint.token_requests) == 2
        assert [a for a, _ in endpoint.data_requests] == [
            "Bearer tok-1",
            "Bearer tok-1",  # answered 401
            "Bearer tok-2",  # the same body once more, with the new token
        ]
        assert endpoint.data_requests[1][1] == endpoint.data_requests[2][1]
    finally:
        await out.stop()
        await endpoint.stop()


async def test_oauth2_token_refreshed_before_it_expires() -> None:
    endpoint = TokenEndpoint(expires_in=600)
    await endpoint.start()
    clock = FakeClock()
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(
        props(**oauth_keys(endpoint, oauth2__refresh_skew_seconds="60")), section="[OUTPUT] h"
    )
    settings = OAuth2Settings.from_options(opts, "[OUTPUT] h", Path.cwd())
    assert settings is not None
    source = TokenSource(settings, clock=clock)
    try:
        assert await source.token() == "tok-1"
        clock.advance(600 - 60 - 60 - 1)  # a tenth off (60 s), less the skew (60 s)
        assert await source.token() == "tok-1"
        clock.advance(2)
        assert await source.token() == "tok-2"
        assert len(endpoint.token_requests) == 2
    finally:
        await source.aclose()
        await endpoint.stop()


async def test_oauth2_private_key_jwt(tmp_path: Path) -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert("agent", key_type=trustme.KeyType.RSA)
    leaf.private_key_pem.write_to_path(tmp_path / "client.key")
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "client.crt")
    endpoint = TokenEndpoint(cert_pem=leaf.cert_chain_pems[0].bytes())
    await endpoint.start()
    keys = oauth_keys(
        endpoint,
        oauth2__auth_method="private_key_jwt",
        oauth2__jwt_key_file="client.key",
        oauth2__jwt_cert_file="client.crt",
    )
    del keys["oauth2__client_secret"]
    out = make_output((node("api", endpoint.port),), config_dir=tmp_path, **keys)
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        form, headers = endpoint.token_requests[0]
        assert "Authorization" not in headers and "client_secret" not in form
        assert [a for a, _ in endpoint.data_requests] == ["Bearer tok-1"]
    finally:
        await out.stop()
        await endpoint.stop()


async def test_oauth2_token_endpoint_down_is_a_retry_that_ejects_no_node() -> None:
    endpoint = TokenEndpoint()
    await endpoint.start()
    receiver = Scripted(200)
    await receiver.start()
    keys = oauth_keys(endpoint, oauth2__timeout="2s")
    keys["oauth2__client_secret"] = "wrong"
    out = make_output((node("api", receiver.port),), **keys)
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.RETRY
        assert receiver.requests == []
        assert out.upstream is not None
        assert all(n["state"] == "healthy" for n in out.upstream.status()["nodes"])
    finally:
        await out.stop()
        await endpoint.stop()
        await receiver.stop()


def test_oauth2_and_aws_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fb5.conf:9.*oauth2.token_url is required"):
        make_output((node("a", 1),), oauth2__enable="on")
    with pytest.raises(ConfigError, match=r"oauth2.client_secret is required"):
        make_output(
            (node("a", 1),),
            oauth2__enable="on",
            oauth2__token_url="http://127.0.0.1:1/t",
            oauth2__client_id="agent",
        )
    with pytest.raises(ConfigError, match=r"oauth2.jwt_key_file is required"):
        make_output(
            (node("a", 1),),
            oauth2__enable="on",
            oauth2__token_url="http://127.0.0.1:1/t",
            oauth2__client_id="agent",
            oauth2__auth_method="private_key_jwt",
        )
    with pytest.raises(ConfigError, match=r"'aws_auth' is not supported by relaybit: AWS SigV4"):
        make_output((node("a", 1),), aws_auth="on")
    with pytest.raises(ConfigError, match=r"http_method 'GET'"):
        make_output((node("a", 1),), http_method="GET")


# -- http_method, proxy, body_key/headers_key ----------------------------------------------


async def test_put_through_an_http_proxy() -> None:
    proxy = RawReceiver(fixed(OK_EMPTY))
    await proxy.start()
    out = make_output(
        (Node(name="api", host="logs.example", port=9),),
        http_method="put",
        proxy=f"http://127.0.0.1:{proxy.port}",
        uri="/in",
    )
    await out.start()
    try:
        assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        line, body = proxy.requests[0]
        assert line == b"PUT http://logs.example:9/in HTTP/1.1"  # absolute form, by name
        assert b'"n":1' in body
    finally:
        await out.stop()
        await proxy.stop()


async def test_body_key_and_headers_key_send_one_request_per_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Scripted(200)
    await receiver.start()
    out = make_output(
        (node("api", receiver.port),), body_key="$payload", headers_key="$meta['headers']"
    )
    await out.start()
    records: list[dict[str, Any]] = [
        {"payload": "first body", "meta": {"headers": {"X-Id": "1", "Content-Type": "text/x"}}},
        {"payload": "no headers"},
        {"payload": "second", "meta": {"headers": {"X-Id": 2}}},
    ]
    try:
        with caplog.at_level(logging.WARNING):
            assert await out.flush(chunk_of(records)) is FlushResult.OK
        got = [(h.get("X-Id"), h.get("Content-Type"), b) for h, b in receiver.requests]
        assert got == [
            ("1", "text/x", b"first body"),
            ("2", "application/octet-stream", b"second"),
        ]
        assert out.skipped == 1 and "is not sent" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING):  # more of them: counted, not logged again
            assert await out.flush(chunk_of([{"payload": "x"}, {"meta": {}}])) is FlushResult.OK
        assert out.skipped == 3 and "is not sent" not in caplog.text
        assert out.status()["skipped_records"] == 3
    finally:
        await out.stop()
        await receiver.stop()


async def test_es_http_api_key_header_unless_http_user_is_set() -> None:
    seen: list[str] = []

    async def bulk(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        docs = (await request.read()).count(b"\n") // 2
        items = [{"create": {"status": 201}}] * docs
        return web.json_response({"took": 1, "errors": False, "items": items})

    app = web.Application()
    app.router.add_post("/_bulk", bulk)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    outputs = []
    try:
        for kv in ({"http_api_key": "a2V5"}, {"http_api_key": "a2V5", "http_user": "u"}):
            opts = (OUTPUT_COMMON + ElasticsearchOutput.options).resolve(
                props(**kv), section="[OUTPUT] es"
            )
            out = ElasticsearchOutput(
                OutputContext(
                    name="es.0",
                    plugin="es",
                    options=opts,
                    upstream=UpstreamSpec(name="up", nodes=(node("es", port),)),
                    logger=plugin_logger("output", "es", "es.0"),
                )
            )
            outputs.append(out)
            await out.start()
            assert await out.flush(chunk_of([{"n": 1}])) is FlushResult.OK
        assert seen[0] == "ApiKey a2V5"
        assert seen[1].startswith("Basic ")  # as Fluent Bit: http_user wins
    finally:
        for out in outputs:
            await out.stop()
        await runner.cleanup()


# -- every key Fluent Bit 5.1.1 declares ------------------------------------------------

#: plugins/out_http/http.c config_map (Fluent Bit 5.1.1), with a value each
OUT_HTTP = {
    "proxy": "http://127.0.0.1:3128",
    "allow_duplicated_headers": "false",
    "log_response_payload": "false",
    "http.response_timeout": "30s",
    "http.read_idle_timeout": "5s",
    "http_user": "u",
    "http_passwd": "p",
    "oauth2.enable": "on",
    "oauth2.token_url": "https://idp.example/token",
    "oauth2.client_id": "agent",
    "oauth2.client_secret": SECRET,
    "oauth2.user_agent": "relaybit",
    "oauth2.scope": "logs",
    "oauth2.audience": "api",
    "oauth2.resource": "https://api.example",
    "oauth2.auth_method": "post",
    "oauth2.jwt_key_file": "unused.key",
    "oauth2.jwt_cert_file": "unused.crt",
    "oauth2.jwt_aud": "https://idp.example",
    "oauth2.jwt_header": "x5t",
    "oauth2.jwt_ttl_seconds": "120",
    "oauth2.refresh_skew_seconds": "30",
    "oauth2.timeout": "5s",
    "oauth2.connect_timeout": "2s",
    "aws_auth": "off",
    "aws_service": "logs",
    "header_tag": "X-Tag",
    "format": "json",
    "json_date_format": "iso8601",
    "json_date_key": "ts",
    "compress": "gzip",
    "header": "X-A b",
    "uri": "/in",
    "http_method": "PUT",
    "gelf_timestamp_key": "t",
    "gelf_host_key": "h",
    "gelf_short_message_key": "s",
    "gelf_full_message_key": "f",
    "gelf_level_key": "l",
    "body_key": "$body",
    "headers_key": "$headers",
}

#: plugins/out_es/es.c config_map (Fluent Bit 5.1.1); ``upstream`` is read by the loader
OUT_ES = {
    "index": "logs",
    "type": "_doc",
    "suppress_type_name": "on",
    "http_user": "u",
    "http_passwd": "p",
    "http_api_key": "a2V5",
    "compress": "gzip",
    "cloud_id": "name:ZXUtd2VzdC0xLmF3cy5mb3VuZC5pbyRhYmMxMjMkZGVmNDU2",
    "cloud_auth": "elastic:pw",
    "aws_auth": "off",
    "aws_region": "eu-west-1",
    "aws_sts_endpoint": "https://sts.example",
    "aws_role_arn": "arn:aws:iam::1:role/x",
    "aws_external_id": "x",
    "aws_service_name": "es",
    "aws_profile": "default",
    "logstash_format": "on",
    "logstash_prefix": "lg",
    "logstash_prefix_separator": "_",
    "logstash_prefix_key": "$svc",
    "logstash_dateformat": "%Y%m%d",
    "time_key": "@ts",
    "time_key_format": "%Y-%m-%dT%H:%M:%S",
    "time_key_nanos": "on",
    "include_tag_key": "on",
    "tag_key": "tag",
    "buffer_size": "1M",
    "path": "/es",
    "pipeline": "p1",
    "generate_id": "on",
    "write_operation": "upsert",
    "id_key": "id",
    "replace_dots": "on",
    "current_time_index": "on",
    "trace_output": "off",
    "trace_error": "on",
}


def test_every_out_http_key_of_fluent_bit_5_1_1_is_accepted(tmp_path: Path) -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert("agent", key_type=trustme.KeyType.RSA)
    leaf.private_key_pem.write_to_path(tmp_path / "unused.key")
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "unused.crt")
    raw = [RawProperty(k, v, ORIGIN) for k, v in OUT_HTTP.items()]
    opts = (OUTPUT_COMMON + HttpOutput.options).resolve(raw, section="[OUTPUT] http")
    ctx = OutputContext(
        name="http.0",
        plugin="http",
        options=opts,
        config_dir=tmp_path,
        logger=plugin_logger("output", "http", "http.0"),
    )
    out = HttpOutput(ctx)
    assert out._method == "PUT" and out._oauth is not None
    assert SECRET not in repr(opts)


def test_every_out_es_key_of_fluent_bit_5_1_1_is_accepted() -> None:
    raw = [RawProperty(k, v, ORIGIN) for k, v in OUT_ES.items()]
    opts = (OUTPUT_COMMON + ElasticsearchOutput.options).resolve(raw, section="[OUTPUT] es")
    ctx = OutputContext(
        name="es.0", plugin="es", options=opts, logger=plugin_logger("output", "es", "es.0")
    )
    ElasticsearchOutput(ctx)
    unused = {key for key, _, _ in opts.without_effect()}
    assert unused == {k for k in OUT_ES if k.startswith("aws_") and k != "aws_auth"}
    assert "a2V5" not in repr(opts)
    with pytest.raises(ConfigError, match=r"fb5.conf:9.*'aws_auth' is not supported"):
        (OUTPUT_COMMON + ElasticsearchOutput.options).resolve(
            props(aws_auth="on"), section="[OUTPUT] es"
        )
