"""The http and elasticsearch inputs' server: HTTP/2, limits, slow clients, the
connection ceiling, TLS failures, malformed requests, health, OAuth2 JWT, metrics."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import shutil
import ssl
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import httpx
import jwt
import pytest
import trustme
import zstandard
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from input_helpers import BatchCollector as Collector
from input_helpers import starter

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.logging import plugin_logger
from relaybit.monitoring.metrics import render_prometheus
from relaybit.net.limits import SummarisedLog
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.elasticsearch import ElasticsearchInput
from relaybit.plugins.inputs.http import HttpInput
from relaybit.testing import wait_for


def make_input(
    collector: Collector, config_dir: Path | None = None, *, cls: Any = HttpInput, **props: str
) -> Any:
    props.setdefault("port", "0")
    props.setdefault("listen", "127.0.0.1")
    origin = Origin("test.conf", 1)
    raw = [RawProperty(k.replace("__", "."), v, origin) for k, v in props.items()]
    plugin = "http" if cls is HttpInput else "elasticsearch"
    opts = (INPUT_COMMON + cls.options).resolve(raw, section=f"[INPUT] {plugin}")
    ctx = InputContext(
        name=f"{plugin}.0",
        plugin=plugin,
        options=opts,
        emit=collector,
        tag=f"{plugin}.0",
        config_dir=config_dir or Path.cwd(),
        logger=plugin_logger("input", plugin, f"{plugin}.0"),
    )
    return cls(ctx)


@pytest.fixture
def served(running: list[Any]) -> Callable[..., Awaitable[Any]]:
    return starter(running, make_input)


async def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection, read until the server closes or the response ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
                head, sep, body = out.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if sep and length and len(body) >= length[0]:
                    break
    except (ConnectionError, TimeoutError):
        pass
    writer.close()
    return out


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None or record.levelno < logging.INFO, record.getMessage()
        assert "Traceback" not in record.getMessage()


# --------------------------------------------------------------------------- HTTP/2


async def test_http2_prior_knowledge_with_httpx(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.post(f"http://127.0.0.1:{plugin.port}/h2.app", json={"v": 2})
        assert r.status_code == 201
        assert r.http_version == "HTTP/2"
        many = [
            client.post(f"http://127.0.0.1:{plugin.port}/h2.many", json={"n": i}) for i in range(40)
        ]
        assert {r.status_code for r in await asyncio.gather(*many)} == {201}
    assert got.records("h2.app") == [{"v": 2}]
    assert sorted(r["n"] for r in got.records("h2.many")) == list(range(40))


async def test_http2_off_answers_http1_only(served: Any) -> None:
    plugin = await served(Collector(), http2="off")
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        with pytest.raises(httpx.HTTPError):
            await client.post(f"http://127.0.0.1:{plugin.port}/x", json={"v": 1})
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{plugin.port}/x", json={"v": 1})
        assert r.status_code == 201 and r.http_version == "HTTP/1.1"


async def test_http2_over_tls_by_alpn(tmp_path: Path, running: list[Any]) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    got = Collector()
    plugin = make_input(
        got, tmp_path, tls="on", tls__crt_file="server.crt", tls__key_file="server.key"
    )
    await plugin.start()
    running.append(plugin)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with httpx.AsyncClient(http2=True, verify=client_ctx) as client:
        r = await client.post(f"https://127.0.0.1:{plugin.port}/tls2", json={"a": 1})
        assert r.status_code == 201 and r.http_version == "HTTP/2"
    async with httpx.AsyncClient(http2=False, verify=client_ctx) as client:
        r = await client.post(f"https://127.0.0.1:{plugin.port}/tls1", json={"a": 2})
        assert r.status_code == 201 and r.http_version == "HTTP/1.1"
    assert got.records("tls2") == [{"a": 1}] and got.records("tls1") == [{"a": 2}]


def _curl_has_http2() -> bool:
    curl = shutil.which("curl")
    if curl is None:
        return False
    out = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False)
    return "HTTP2" in out.stdout


@pytest.mark.skipif(not _curl_has_http2(), reason="curl with HTTP/2 support is not installed")
async def test_curl_http2_prior_knowledge(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"curl": true}',
        f"http://127.0.0.1:{plugin.port}/curl",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert out.decode() == "2 201"
    # curl --http2 on http:// asks to upgrade (Upgrade: h2c): declined, as Fluent Bit,
    # the request is answered over HTTP/1.1
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"curl": 2}',
        f"http://127.0.0.1:{plugin.port}/curl",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert out.decode() == "1.1 201"
    assert got.records("curl") == [{"curl": True}, {"curl": 2}]


async def test_elasticsearch_over_http2(running: list[Any]) -> None:
    got = Collector()
    plugin = make_input(got, cls=ElasticsearchInput)
    await plugin.start()
    running.append(plugin)
    body = b'{"index":{"_index":"i"}}\n{"a":1}\n'
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.post(f"http://127.0.0.1:{plugin.port}/_bulk", content=body)
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        assert r.json()["errors"] is False
    assert got.records() == [{"a": 1, "@meta": {"index": {"_index": "i"}}}]


# --------------------------------------------------------------------------- HTTP/1.1 wire


async def test_http11_errors_and_lenient_headers(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    plugin = await served(got)
    port = plugin.port
    body = b'{"a":1}'
    ok = await raw_exchange(
        port,
        b"POST /lenient HTTP/1.1\r\nHost: x\r\nConnection:\r\nTransfer-Encoding: \r\n"
        b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n" + body,
    )
    assert ok.startswith(b"HTTP/1.1 201 Created\r\n"), ok
    bad = await raw_exchange(port, b"GARBAGE\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 Bad Request\r\n"), bad
    no_host = await raw_exchange(port, b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    assert no_host.startswith(b"HTTP/1.1 400 ") and b"missing host header" in no_host
    huge = await raw_exchange(port, b"POST /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
    assert huge.startswith(b"HTTP/1.1 431 ")
    old = await raw_exchange(port, b"POST /old HTTP/1.0\r\nContent-Length: 7\r\n\r\n" + body)
    assert old.startswith(b"HTTP/1.1 201 ")
    assert got.records("lenient") == [{"a": 1}] and got.records("old") == [{"a": 1}]
    no_traceback(caplog)


async def test_pipelined_and_keepalive(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    one = b'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}'
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(one + one.replace(b"1}", b"2}") + one.replace(b"1}", b"3}"))
    data = b""
    while data.count(b"201 Created") < 3:
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk
        data += chunk
    writer.close()
    assert [r["a"] for r in got.records("p")] == [1, 2, 3]


async def test_fuzzed_requests_never_log_a_traceback(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    plugin = await served(got)
    rng = random.Random(1414)
    valid = b'POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}'
    seeds = [
        valid,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b'POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a"\r\n',
    ]
    payloads = []
    for _ in range(60):
        seed = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(seed))
            seed[pos] = rng.randrange(256)
        payloads.append(bytes(seed[: rng.randint(1, len(seed))]))
    payloads += [rng.randbytes(rng.randint(1, 300)) for _ in range(30)]
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
    payloads += [preface + settings + rng.randbytes(rng.randint(1, 300)) for _ in range(30)]
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    headers = [(":method", "POST"), (":path", "/f"), (":scheme", "http"), (":authority", "x")]
    client.send_headers(1, headers)
    client.send_data(1, b'{"a":1}', end_stream=True)
    request = client.data_to_send()
    for _ in range(40):  # a valid HTTP/2 request, a few bytes after the preface changed
        mutated = bytearray(request)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(preface), len(mutated))] = rng.randrange(256)
        payloads.append(bytes(mutated))
    await asyncio.gather(*(raw_exchange(plugin.port, p, timeout=0.5) for p in payloads))
    # the server still serves
    assert (await raw_exchange(plugin.port, valid)).startswith(b"HTTP/1.1 201 ")
    no_traceback(caplog)
    await wait_for(lambda: plugin.server.inflight == 0)


# --------------------------------------------------------------------------- limits


async def test_declared_body_over_limit_is_413_before_reading(served: Any) -> None:
    got = Collector()
    plugin = await served(got, buffer_max_size="64k")
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
    writer.write(b"x" * 1000)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 413 Payload Too Large\r\n")
    writer.close()
    assert plugin.metrics()["rejected"]["too_large"] == 1
    await wait_for(lambda: plugin.server.inflight == 0)


async def test_chunked_body_cut_when_it_passes_the_limit(served: Any) -> None:
    plugin = await served(Collector(), buffer_max_size="64k")
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (16384, b"y" * 16384)
    sent = 0
    head = b""
    with pytest.raises((ConnectionError, TimeoutError)):
        async with asyncio.timeout(5):
            while True:  # keep sending until the server cuts us off
                writer.write(chunk)
                sent += 16384
                await writer.drain()
                if not head:
                    try:
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.01)
                    except TimeoutError:
                        pass
                    except asyncio.IncompleteReadError as exc:
                        raise ConnectionResetError from exc
    writer.close()
    assert sent < 12 * 1024 * 1024  # cut early (loopback socket buffers hold a few MB)
    assert plugin.metrics()["rejected"]["too_large"] == 1
    await wait_for(lambda: plugin.server.inflight == 0)


async def test_slow_head_and_body_get_408(served: Any) -> None:
    plugin = await served(Collector(), net__io_timeout="0.3s")
    started = time.monotonic()
    head = await raw_exchange(plugin.port, b"POST /slow HTTP/1.1\r\nHost: x\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), head
    body = await raw_exchange(
        plugin.port, b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    )
    assert body.startswith(b"HTTP/1.1 408 "), body
    assert time.monotonic() - started < 4
    assert plugin.metrics()["rejected"]["timeout"] == 2


async def test_idle_connection_closed_after_idle_timeout(served: Any) -> None:
    plugin = await served(Collector(), http_server__idle_timeout="0.3s")
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, no answer
    writer.close()
    await wait_for(lambda: plugin.metrics()["connections"] == 0)
    assert plugin.metrics()["rejected"]["timeout"] == 0  # idle is not an error


async def test_connection_ceiling(served: Any, caplog: pytest.LogCaptureFixture) -> None:
    got = Collector()
    plugin = await served(got, http_server__max_connections="2")
    held = [await asyncio.open_connection("127.0.0.1", plugin.port) for _ in range(2)]
    await wait_for(lambda: plugin.metrics()["connections"] == 2)
    for _ in range(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    metrics = plugin.metrics()
    assert metrics["connections_refused"] == 10
    lines = [r for r in caplog.records if "refusing new connections" in r.getMessage()]
    assert len(lines) == 1  # one line per burst
    # an existing client is still served
    reader, writer = held[0]
    writer.write(b'POST /kept HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}')
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 201")
    for _, w in held:
        w.close()
    assert got.records("kept") == [{"a": 1}]


async def test_tls_handshake_failure_is_a_warning_naming_the_peer(
    tmp_path: Path, running: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    plugin = make_input(
        Collector(), tmp_path, tls="on", tls__crt_file="server.crt", tls__key_file="server.key"
    )
    await plugin.start()
    running.append(plugin)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    host, port = writer.get_extra_info("sockname")[:2]
    local = f"{host}:{port}"
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await wait_for(lambda: plugin.metrics()["rejected"]["tls"] == 1)
    lines = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert lines and lines[0].levelno == logging.WARNING
    assert local in lines[0].getMessage()


@pytest.mark.parametrize("log_error", ["on", "off"])
async def test_tls_handshake_timeout_names_net_accept_timeout_at_the_level_asked(
    tmp_path: Path, running: list[Any], caplog: pytest.LogCaptureFixture, log_error: str
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    caplog.set_level(logging.DEBUG)
    plugin = make_input(
        Collector(),
        tmp_path,
        tls="on",
        tls__crt_file="server.crt",
        tls__key_file="server.key",
        net__accept_timeout="0.2",
        net__accept_timeout_log_error=log_error,
    )
    await plugin.start()
    running.append(plugin)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)  # says nothing
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await wait_for(lambda: plugin.metrics()["rejected"]["tls"] == 1)
    lines = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(lines) == 1
    assert "no TLS handshake within net.accept_timeout (0.2s)" in lines[0].getMessage()
    assert lines[0].levelno == (logging.WARNING if log_error == "on" else logging.DEBUG)


# --------------------------------------------------------------------------- health, OAuth2


async def test_health_endpoint(served: Any) -> None:
    plugin = await served(Collector(), enable_health_endpoint="on", http_user="u", http_passwd="p")
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{plugin.port}/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = await client.post(f"http://127.0.0.1:{plugin.port}/x", json={})
        assert r.status_code == 401
    plain = await served(Collector())
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{plain.port}/health")
        assert r.status_code == 400  # not enabled: a GET is an invalid method


@pytest.fixture
async def jwks() -> AsyncIterator[dict[str, Any]]:
    """A JWKS server on 127.0.0.1 with one RSA key (kid k1) and a token maker."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update(kid="k1", use="sig", alg="RS256")
    fetches = []

    async def serve(request: web.Request) -> web.Response:
        fetches.append(request.path)
        return web.json_response({"keys": [public]})

    app = web.Application()
    app.router.add_get("/jwks.json", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def token(kid: str = "k1", signer: Any = key, **claims: Any) -> str:
        body = {"iss": "https://issuer.test", "exp": int(time.time()) + 60, **claims}
        return jwt.encode(body, signer, algorithm="RS256", headers={"kid": kid})

    yield {"url": f"http://127.0.0.1:{port}/jwks.json", "token": token, "fetches": fetches}
    await runner.cleanup()


async def test_oauth2_jwt_validation(
    served: Any, jwks: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    plugin = await served(
        got,
        oauth2__validate="on",
        oauth2__jwks_url=jwks["url"],
        oauth2__issuer="https://issuer.test",
        oauth2__allowed_audience="logs",
        oauth2__allowed_clients="agent-a",
        enable_health_endpoint="on",
    )
    token = jwks["token"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = token(aud="logs", azp="agent-a")
    cases = {
        "no token": None,
        "basic": "Basic dTpw",
        "expired": token(aud="logs", azp="agent-a", exp=int(time.time()) - 5),
        "wrong issuer": token(aud="logs", azp="agent-a", iss="https://evil.test"),
        "wrong audience": token(aud="other", azp="agent-a"),
        "wrong client": token(aud="logs", azp="agent-b"),
        "unknown kid": token(kid="k9", aud="logs", azp="agent-a"),
        "bad signature": token(signer=other_key, aud="logs", azp="agent-a"),
        "garbage": "not.a.jwt",
    }
    url = f"http://127.0.0.1:{plugin.port}/secure"
    async with httpx.AsyncClient() as client:
        for name, value in cases.items():
            auth = value if value is None or value.startswith("Basic") else f"Bearer {value}"
            headers = {"Authorization": auth} if auth else {}
            r = await client.post(url, json={"case": name}, headers=headers)
            assert r.status_code == 401, name
        r = await client.post(url, json={"ok": 1}, headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 201
        r = await client.get(f"http://127.0.0.1:{plugin.port}/health")
        assert r.status_code == 200  # the health endpoint stays open
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.post(url, json={"ok": 2}, headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 201
        r = await client.post(url, json={"no": 2})
        assert r.status_code == 401
    assert got.records("secure") == [{"ok": 1}, {"ok": 2}]
    assert plugin.metrics()["rejected"]["auth"] == len(cases) + 1
    assert len(jwks["fetches"]) == 1  # unknown kids do not make the agent fetch again
    lines = [r.getMessage() for r in caplog.records if "OAuth2 validation failed" in r.getMessage()]
    assert lines and len(lines) <= 5  # summarised
    no_traceback(caplog)


async def test_oauth2_on_elasticsearch(running: list[Any], jwks: dict[str, Any]) -> None:
    got = Collector()
    plugin = make_input(
        got, cls=ElasticsearchInput, oauth2__validate="on", oauth2__jwks_url=jwks["url"]
    )
    await plugin.start()
    running.append(plugin)
    body = b'{"index":{}}\n{"a":1}\n'
    url = f"http://127.0.0.1:{plugin.port}/_bulk"
    async with httpx.AsyncClient() as client:
        r = await client.post(url, content=body)
        assert r.status_code == 401 and r.json()["error"]["type"] == "security_exception"
        auth = {"Authorization": f"Bearer {jwks['token']()}"}
        r = await client.post(url, content=body, headers=auth)
        assert r.status_code == 200
    assert got.records() == [{"a": 1, "@meta": {"index": {}}}]


def test_oauth2_validate_needs_a_jwks_url() -> None:
    with pytest.raises(ConfigError, match=r"oauth2\.jwks_url"):
        make_input(Collector(), oauth2__validate="on")


# --------------------------------------------------------------------------- keys, metrics


def test_fluent_bit_keys_and_aliases(caplog: pytest.LogCaptureFixture) -> None:
    plugin = make_input(
        Collector(),
        buffer_max_size="1M",
        http_server__max_connections="7",
        workers="4",
        http_server__ingress_queue_event_limit="10",
        net__share_port="on",
        net__backlog="64",
        net__keepalive="off",
        net__accept_timeout="3s",
        add_remote_addr="on",
    )
    s = plugin.server.settings
    assert (s.max_body, s.max_connections, s.reuse_port, s.backlog) == (1 << 20, 7, True, 64)
    assert (s.keepalive, s.accept_timeout) == (False, 3.0)
    warned = {name for name, _, _ in plugin.ctx.options.without_effect()}
    assert "workers" in warned  # one warning at start-up (the agent logs it)
    assert s.max_pending == 10
    # the http_server.* spelling wins over its alias
    both = make_input(Collector(), http_server__buffer_max_size="2M", buffer_max_size="1M")
    assert both.server.settings.max_body == 2 << 20


async def test_add_remote_addr(served: Any) -> None:
    got = Collector()
    plugin = await served(got, add_remote_addr="on")
    async with httpx.AsyncClient() as client:
        headers = {"X-Forwarded-For": "10.1.2.3, 10.0.0.1"}
        r = await client.post(f"http://127.0.0.1:{plugin.port}/r", json=[{"a": 1}], headers=headers)
        assert r.status_code == 201
    assert got.records("r") == [{"a": 1, "REMOTE_ADDR": "10.1.2.3"}]


async def test_no_keepalive_closes_after_each_response(served: Any) -> None:
    plugin = await served(Collector(), net__keepalive="off")
    out = await raw_exchange(
        plugin.port, b"POST /k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert out.startswith(b"HTTP/1.1 201") and b"connection: close" in out.lower()


async def test_metrics_reach_prometheus(served: Any) -> None:
    plugin = await served(Collector(), buffer_max_size="1k")
    await raw_exchange(plugin.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")

    class Agent:
        outputs: dict[str, Any] = {}

        def metrics(self) -> dict[str, Any]:
            return {"input": {"http.0": {"records": 0, "bytes": 0, **plugin.metrics()}}}

    text = render_prometheus(Agent()).decode()
    assert 'relaybit_input_rejected_total{name="http.0",reason="too_large"} 1.0' in text
    assert 'relaybit_input_connections_refused_total{name="http.0"} 0.0' in text
    assert "relaybit_input_connections{" in text


def test_summarised_log_writes_the_first_few_then_one_line() -> None:
    now = [0.0]
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("relaybit.test.summarised")
    logger.addHandler(Capture())
    logger.propagate = False
    log = SummarisedLog(logger, "in.0", first=3, interval=10.0, clock=lambda: now[0])
    for i in range(50):
        log.log("malformed", "bad %d", i)
    assert records == ["bad 0", "bad 1", "bad 2"]
    now[0] = 11.0
    log.flush()
    assert records[-1] == "in.0: 47 more connections closed for malformed in the last 10 s"
    log.log("malformed", "bad again")
    assert records[-1] == "bad again"


def test_under_uvloop() -> None:
    """The agent runs on uvloop, whose transports differ: the main paths once more on it."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        got = Collector()
        plugin = make_input(got, net__io_timeout="0.3s", buffer_max_size="64k")
        await plugin.start()
        try:
            port = plugin.port
            ok = await raw_exchange(
                port, b'POST /uv HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}'
            )
            assert ok.startswith(b"HTTP/1.1 201 ")
            big = await raw_exchange(
                port, b"POST /uv HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
            )
            assert big.startswith(b"HTTP/1.1 413 ")
            slow = await raw_exchange(port, b"POST /uv HTTP/1.1\r\n")
            assert slow.startswith(b"HTTP/1.1 408 ")
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                r = await client.post(f"http://127.0.0.1:{port}/uv", json={"a": 2})
                assert r.status_code == 201 and r.http_version == "HTTP/2"
        finally:
            await plugin.stop()
        assert got.records("uv") == [{"a": 1}, {"a": 2}]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_http2_body_over_limit_is_413_and_the_connection_goes_on(served: Any) -> None:
    got = Collector()
    plugin = await served(got, buffer_max_size="64k")
    url = f"http://127.0.0.1:{plugin.port}/h2big"

    async def stream() -> AsyncIterator[bytes]:  # no content-length: cut while reading
        for _ in range(64):
            yield b"x" * 4096

    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.post(url, content=b"[" + b"1," * 50_000 + b"1]")
        assert r.status_code == 413
        try:
            r = await client.post(url, content=stream())
            assert r.status_code == 413
        except httpx.RemoteProtocolError:
            pass  # the stream was reset before the client read the answer
        r = await client.post(url, json={"after": 1})  # the same connection still serves
        assert r.status_code == 201
    assert got.records("h2big") == [{"after": 1}]
    assert plugin.metrics()["rejected"]["too_large"] == 2
    await wait_for(lambda: plugin.server.inflight == 0)


async def test_nothing_is_acknowledged_before_it_is_stored(served: Any) -> None:
    release = asyncio.Event()
    stored: list[str] = []

    async def slow_emit(tag: str, data: bytes, records: int) -> None:
        await release.wait()  # storage is slow (or the input is paused)
        stored.append(tag)

    plugin = await served(slow_emit)
    async with httpx.AsyncClient() as client:
        post = asyncio.ensure_future(
            client.post(f"http://127.0.0.1:{plugin.port}/slow", json={"a": 1})
        )
        await asyncio.sleep(0.2)  # give a premature answer the time to arrive
        assert not post.done()
        release.set()
        assert (await post).status_code == 201
    assert stored == ["slow"]


async def test_half_closed_client_still_gets_its_answer(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(b'POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}')
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert got.records("half") == [{"a": 1}]


async def test_expect_100_continue(served: Any) -> None:
    got = Collector()
    plugin = await served(got, http_user="u", http_passwd="p")
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\n"
        b"Expect: 100-continue\r\nContent-Length: 7\r\n\r\n"
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b'{"a":1}')
    final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert final.startswith(b"HTTP/1.1 201 ")
    writer.close()
    # without credentials: 401 at once, the body is never asked for
    refused = await raw_exchange(
        plugin.port,
        b"POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n",
    )
    assert refused.startswith(b"HTTP/1.1 401 ")
    assert got.records("c") == [{"a": 1}]


async def test_http2_slow_body_is_timed_out(served: Any) -> None:
    plugin = await served(Collector(), net__io_timeout="0.3s")

    async def slow() -> AsyncIterator[bytes]:
        yield b'{"a":'
        await asyncio.sleep(1)
        yield b"1}"

    async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as client:
        with pytest.raises(httpx.HTTPError):
            await client.post(f"http://127.0.0.1:{plugin.port}/slow", content=slow())
    assert plugin.metrics()["rejected"]["timeout"] == 1


class Gate:
    """An emit() that stores only once opened (storage slow, or the input paused)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.got = Collector()

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        await self.open.wait()
        await self.got(tag, data, records)


async def test_bytes_in_flight_over_ingress_queue_byte_limit_get_503(served: Any) -> None:
    gate = Gate()
    plugin = await served(gate, http_server__ingress_queue_byte_limit="100k")
    body = orjson_body(80_000)
    url = f"http://127.0.0.1:{plugin.port}/q"
    async with httpx.AsyncClient() as client:
        first = asyncio.ensure_future(client.post(url, content=body))
        await wait_for(lambda: plugin.server.inflight >= 70_000)
        r = await client.post(url, content=body)  # 160 KB held: over the limit
        assert r.status_code == 503 and b"ingress queue is full" in r.content
        gate.open.set()
        assert (await first).status_code == 201
        r = await client.post(url, content=body)
        assert r.status_code == 201
    assert len(gate.got.batches) == 2  # two requests stored, the refused one not
    assert plugin.metrics()["rejected"]["busy"] == 1
    await wait_for(lambda: plugin.server.inflight == 0)


@pytest.mark.parametrize("http2", [False, True])
async def test_requests_over_ingress_queue_event_limit_get_503(served: Any, http2: bool) -> None:
    gate = Gate()
    plugin = await served(gate, http_server__ingress_queue_event_limit="1")
    url = f"http://127.0.0.1:{plugin.port}/e"
    async with httpx.AsyncClient(http1=not http2, http2=http2) as client:
        first = asyncio.ensure_future(client.post(url, json={"n": 1}))
        await wait_for(lambda: len(plugin.server.handlers) == 1)
        r = await client.post(url, json={"n": 2})
        assert r.status_code == 503
        gate.open.set()
        assert (await first).status_code == 201
        assert (await client.post(url, json={"n": 3})).status_code == 201
    assert gate.got.records("e") == [{"n": 1}, {"n": 3}]
    await wait_for(lambda: plugin.server.inflight == 0)


async def test_elasticsearch_busy_is_json(running: list[Any]) -> None:
    gate = Gate()
    plugin = make_input(gate, cls=ElasticsearchInput, http_server__ingress_queue_event_limit="1")
    await plugin.start()
    running.append(plugin)
    url = f"http://127.0.0.1:{plugin.port}/_bulk"
    body = b'{"index":{}}\n{"a":1}\n'
    async with httpx.AsyncClient() as client:
        first = asyncio.ensure_future(client.post(url, content=body))
        await wait_for(lambda: len(plugin.server.handlers) == 1)
        r = await client.post(url, content=body)
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "es_rejected_execution_exception"
        gate.open.set()
        assert (await first).status_code == 200


def orjson_body(size: int) -> bytes:
    """A JSON array of records about ``size`` bytes long."""
    record = b'{"log":"' + b"x" * 90 + b'"}'
    return b"[" + b",".join([record] * (size // (len(record) + 1))) + b"]"


async def test_urlencoded_form_is_one_record(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    form = b"msg=hello+world%21& level = info &novalue&=x&empty="
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{plugin.port}/form", content=form, headers=headers)
        assert r.status_code == 201
        r = await client.post(
            f"http://127.0.0.1:{plugin.port}/form", content=b"&&", headers=headers
        )
        assert r.status_code == 400
    assert got.records("form") == [{"msg": "hello world!", "level": "info", "empty": ""}]


@pytest.mark.parametrize("encoding", ["gzip", "zlib", "deflate", "deflate-raw", "zstd"])
async def test_content_encodings(served: Any, encoding: str) -> None:
    got = Collector()
    plugin = await served(got, buffer_max_size="64k")
    raw = b'[{"a":1},{"b":2}]'
    compress = {
        "gzip": gzip.compress,
        "zlib": zlib.compress,
        "deflate": zlib.compress,
        "deflate-raw": _raw_deflate,
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    }[encoding]
    header = encoding.removesuffix("-raw")
    url = f"http://127.0.0.1:{plugin.port}/enc"
    async with httpx.AsyncClient() as client:
        headers = {"Content-Encoding": header, "Content-Type": "application/json"}
        r = await client.post(url, content=compress(raw), headers=headers)
        assert r.status_code == 201
        bomb = compress(b"[" + b" " * 1_000_000 + b"]")  # 1 MB decoded, over 64k
        r = await client.post(url, content=bomb, headers=headers)
        assert r.status_code == 413
        r = await client.post(url, content=b"not compressed", headers=headers)
        assert r.status_code == 400
    assert got.records("enc") == [{"a": 1}, {"b": 2}]


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


async def test_tag_from_a_percent_encoded_path(served: Any) -> None:
    got = Collector()
    plugin = await served(got)
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{plugin.port}/app%2Fweb.log?x=1", json={"a": 1})
        assert r.status_code == 201
    assert got.records("app_web.log") == [{"a": 1}]  # decoded, query dropped, as Fluent Bit
