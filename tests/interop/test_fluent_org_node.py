"""@fluent-org/logger (fluent-logger-forward-node), an independent Forward client AND server.

Client: every event mode (incl. Forward), acks, shared_key, user auth and TLS
against relaybit's forward input.  Server: its ``FluentServer`` (acks, shared
key, user auth, TLS) receives from relaybit's forward output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime
from relaybit.config.loader import full_configmap
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, InputContext, OutputContext
from relaybit.plugins.inputs.forward import ForwardInput
from relaybit.plugins.outputs.forward.output import ForwardOutput

ORIGIN = Origin("interop.conf", 1)
RECORD_A = {"msg": "hello", "n": 1, "nested": {"list": [1, 2.5, None, True]}}
RECORD_B = {"msg": "ünïcode ✓", "n": 2}
EVENTS = [
    {"label": "app.web", "record": RECORD_A, "time": [1700000000, 123456789]},
    {"label": "app.db", "record": RECORD_B, "time": 1700000001},
    {"label": "app.web", "record": {"n": 3}, "time": [1700000002, 999999999]},
]
EXPECTED = [
    ("app.web", EventTime(1700000000, 123456789), RECORD_A),
    ("app.db", 1700000001, RECORD_B),
    ("app.web", EventTime(1700000002, 999999999), {"n": 3}),
]
SECURE = {"shared_key": "s3cret-key", "self_hostname": "relaybit.test"}
TLS_IN = {"tls": "on", "tls.crt_file": "server.pem", "tls.key_file": "server.key"}


def make_input(emit: Any, config_dir: Path | None = None, **values: str) -> ForwardInput:
    raw = [
        RawProperty(key, value, ORIGIN)
        for key, value in {"listen": "127.0.0.1", "port": "0", **values}.items()
    ]
    opts = full_configmap("input", ForwardInput).resolve(raw, section="[INPUT] forward")
    ctx = InputContext(
        name="forward.0", plugin="forward", options=opts, emit=emit, config_dir=config_dir
    )
    return ForwardInput(ctx)


def by_n(items: list[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    return sorted(items, key=lambda item: item[2]["n"])


# -- @fluent-org/logger client -> relaybit forward input ---------------------

CLIENT_CASES: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "Message": ({}, {"eventMode": "Message"}),
    "Forward": ({}, {"eventMode": "Forward"}),
    "PackedForward": ({}, {"eventMode": "PackedForward"}),
    "CompressedPackedForward": ({}, {"eventMode": "CompressedPackedForward"}),
    "Message+ack": ({}, {"eventMode": "Message", "ack": True}),
    "Forward+ack": ({}, {"eventMode": "Forward", "ack": True}),
    "Compressed+ack": ({}, {"eventMode": "CompressedPackedForward", "ack": True}),
    "shared_key+ack": (
        SECURE,
        {"ack": True, "security": {"clientHostname": "node.test", "sharedKey": "s3cret-key"}},
    ),
    "users+ack": (
        {**SECURE, "security.users": "alice pa55word"},
        {
            "ack": True,
            "security": {
                "clientHostname": "node.test",
                "sharedKey": "s3cret-key",
                "username": "alice",
                "password": "pa55word",
            },
        },
    ),
    "tls+ack": (TLS_IN, {"ack": True, "tls": True}),
    "tls+shared_key+ack": (
        {**TLS_IN, **SECURE},
        {
            "eventMode": "Forward",
            "ack": True,
            "tls": True,
            "security": {"clientHostname": "node.test", "sharedKey": "s3cret-key"},
        },
    ),
}


@pytest.mark.parametrize("case", list(CLIENT_CASES))
async def test_client_to_relaybit(
    case: str, certs: Path, run_node: Any, store: Any, waiter: Any
) -> None:
    in_values, spec = CLIENT_CASES[case]
    plugin = make_input(store.emit, certs, **in_values)
    await plugin.start()
    if spec.get("tls"):
        spec = {**spec, "tls": {"caFile": str(certs / "ca.pem")}}
    try:
        lines = await run_node(
            "send_fluent_org.js",
            {"host": "127.0.0.1", "port": plugin.port, "events": EVENTS, **spec},
        )
        assert [x for x in lines if x["event"] in ("failed", "client_error")] == []
        assert sorted(x["i"] for x in lines if x["event"] == "sent") == [0, 1, 2]
        await waiter(lambda: len(store.items) == 3)
    finally:
        await plugin.stop()
    assert by_n(store.items) == EXPECTED


@pytest.mark.parametrize(
    ("security", "reason"),
    [
        ({"sharedKey": "wrong-key"}, "shared_key mismatch"),
        ({"sharedKey": "s3cret-key", "username": "alice", "password": "bad"}, "username/password"),
    ],
    ids=["wrong-key", "wrong-password"],
)
async def test_client_refused_delivers_nothing(
    security: dict[str, str], reason: str, run_node: Any, store: Any
) -> None:
    plugin = make_input(store.emit, **SECURE, **{"security.users": "alice pa55word"})
    await plugin.start()
    try:
        lines = await run_node(
            "send_fluent_org.js",
            {
                "host": "127.0.0.1",
                "port": plugin.port,
                "events": EVENTS,
                "ack": True,
                "deadlineMs": 1500,
                "security": {"clientHostname": "node.test", **security},
            },
        )
    finally:
        await plugin.stop()
    assert [x for x in lines if x["event"] == "sent"] == []
    errors = [x for x in lines if x["event"] == "client_error"]
    assert errors and reason in errors[0]["message"], lines
    assert store.items == []


# -- relaybit forward output -> @fluent-org/logger FluentServer --------------


class NodeServer:
    """``serve_fluent_org.js`` as a child process, its received entries collected."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.entries: list[tuple[str, Any, Any]] = []
        self._reader = asyncio.create_task(self._collect())

    @classmethod
    async def start(cls, node_dir: Path, spec: dict[str, Any]) -> NodeServer:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(node_dir / "serve_fluent_org.js"),
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            first = json.loads(await proc.stdout.readline())
        assert first["event"] == "listening", first
        return cls(proc, first["port"])

    async def _collect(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            msg = json.loads(line)
            time = msg["time"]
            self.entries.append(
                (msg["tag"], EventTime(*time) if isinstance(time, list) else time, msg["record"])
            )

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def make_output(config_dir: Path, values: dict[str, str]) -> ForwardOutput:
    raw = [RawProperty(key, value, ORIGIN) for key, value in values.items()]
    opts = full_configmap("output", ForwardOutput).resolve(raw, section="[OUTPUT] forward")
    ctx = OutputContext(name="forward.0", plugin="forward", options=opts, config_dir=config_dir)
    return ForwardOutput(ctx)


T = EventTime(1700000000, 42)
CHUNK_RECORDS = [{"n": i, "msg": f"m{i}", "ü": [i, None]} for i in range(5)]
NODE_SECURITY = {
    "serverHostname": "node-server.test",
    "sharedKey": "s3cret-key",
    "authorize": False,
    "userDict": {},
}
OUT_SECURE = {"shared_key": "s3cret-key", "self_hostname": "relaybit.test"}
OUT_TLS = {"tls": "on", "tls.ca_file": "ca.pem"}

SERVER_CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "plain": ({}, {}),
    "ack": ({}, {"require_ack_response": "on"}),
    "gzip+ack": ({}, {"require_ack_response": "on", "compress": "gzip", "send_options": "on"}),
    "time_as_integer+ack": ({}, {"require_ack_response": "on", "time_as_integer": "on"}),
    "shared_key+ack": ({"security": NODE_SECURITY}, {**OUT_SECURE, "require_ack_response": "on"}),
    "users+ack": (
        {"security": {**NODE_SECURITY, "authorize": True, "userDict": {"alice": "pa55word"}}},
        {**OUT_SECURE, "username": "alice", "password": "pa55word", "require_ack_response": "on"},
    ),
    "tls+shared_key+ack": (
        {"security": NODE_SECURITY, "tls": True},
        {**OUT_TLS, **OUT_SECURE, "require_ack_response": "on"},
    ),
}


async def flush_to(
    node_dir: Path, certs: Path, server_spec: dict[str, Any], out_values: dict[str, str]
) -> tuple[FlushResult, NodeServer, ForwardOutput]:
    if server_spec.get("tls"):
        server_spec = {
            **server_spec,
            "tls": {"certFile": str(certs / "server.pem"), "keyFile": str(certs / "server.key")},
        }
    server = await NodeServer.start(node_dir, server_spec)
    output = make_output(
        certs,
        {"host": "127.0.0.1", "port": str(server.port), "net.connect_timeout": "2s", **out_values},
    )
    data = b"".join(entry(T, record) for record in CHUNK_RECORDS)
    try:
        await output.start()
        try:
            result = await output.flush(
                Chunk(tag="relay.out", data=data, records=len(CHUNK_RECORDS))
            )
        finally:
            await output.stop()
    except BaseException:
        await server.stop()
        raise
    return result, server, output


@pytest.mark.parametrize("case", list(SERVER_CASES))
async def test_relaybit_output_to_node_server(
    case: str, node_dir: Path, certs: Path, waiter: Any
) -> None:
    server_spec, out_values = SERVER_CASES[case]
    result, server, _ = await flush_to(node_dir, certs, server_spec, out_values)
    try:
        assert result is FlushResult.OK
        await waiter(lambda: len(server.entries) == len(CHUNK_RECORDS))
    finally:
        await server.stop()
    time = T.seconds if "time_as_integer" in case else T
    assert server.entries == [("relay.out", time, record) for record in CHUNK_RECORDS]


@pytest.mark.parametrize(
    ("server_spec", "out_values", "reason"),
    [
        (
            {"security": NODE_SECURITY},
            {**OUT_SECURE, "shared_key": "wrong-key", "require_ack_response": "on"},
            "refused authentication",
        ),
        (
            {"security": {**NODE_SECURITY, "authorize": True, "userDict": {"alice": "pa55word"}}},
            {**OUT_SECURE, "username": "alice", "password": "bad", "require_ack_response": "on"},
            "refused authentication",
        ),
    ],
    ids=["wrong-key", "wrong-password"],
)
async def test_relaybit_output_refused_by_node_server(
    server_spec: dict[str, Any],
    out_values: dict[str, str],
    reason: str,
    node_dir: Path,
    certs: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    result, server, output = await flush_to(node_dir, certs, server_spec, out_values)
    await server.stop()
    assert result is FlushResult.RETRY
    assert server.entries == []
    message = output.status()["nodes"][0]["last_error"]["message"]
    assert reason in message, message
    assert "wrong-key" not in str(output.status()) and "bad" not in message
