"""fluent-logger-node (npm ``fluent-logger``) -> relaybit's forward input.

A real Node.js process runs the official Fluent client; relaybit's
ForwardInput listens in the test process on 127.0.0.1, port 0.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.loader import full_configmap
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import InputContext
from relaybit.plugins.inputs.forward import ForwardInput

SCRIPT = "send_fluent_logger.js"
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


def make_input(emit: Any, config_dir: Path | None = None, **values: str) -> ForwardInput:
    raw = [
        RawProperty(key, value, Origin("interop.conf", 1))
        for key, value in {"listen": "127.0.0.1", "port": "0", **values}.items()
    ]
    opts = full_configmap("input", ForwardInput).resolve(raw, section="[INPUT] forward")
    ctx = InputContext(
        name="forward.0", plugin="forward", options=opts, emit=emit, config_dir=config_dir
    )
    return ForwardInput(ctx)


def outcome(lines: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """(indexes of emits whose callback succeeded, every failure or client error)."""
    sent = sorted(line["i"] for line in lines if line["event"] == "sent")
    failed = [line for line in lines if line["event"] in ("failed", "client_error")]
    return sent, failed


async def send(
    run_node: Callable[..., Awaitable[list[dict[str, Any]]]],
    plugin: ForwardInput,
    **spec: Any,
) -> tuple[list[int], list[dict[str, Any]]]:
    spec = {"host": "127.0.0.1", "port": plugin.port, "events": EVENTS, **spec}
    return outcome(await run_node(SCRIPT, spec))


@pytest.mark.parametrize("mode", ["Message", "PackedForward", "CompressedPackedForward"])
@pytest.mark.parametrize("ack", [False, True], ids=["no-ack", "ack"])
async def test_event_modes_arrive_intact(
    mode: str, ack: bool, run_node: Any, store: Any, waiter: Any
) -> None:
    plugin = make_input(store.emit)
    await plugin.start()
    try:
        sent, failed = await send(run_node, plugin, eventMode=mode, requireAckResponse=ack)
        assert failed == []
        assert sent == [0, 1, 2]
        await waiter(lambda: len(store.items) == 3)
    finally:
        await plugin.stop()
    # PackedForward groups a flush by tag: compare per tag, order kept within a tag
    for tag in ("app.web", "app.db"):
        assert [i for i in store.items if i[0] == tag] == [e for e in EXPECTED if e[0] == tag]
    if mode == "Message":
        assert store.items == EXPECTED


async def test_failing_emit_means_no_ack(
    run_node: Any, waiter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def refuse(tag: str, entries: bytes, records: int) -> None:
        calls.append(tag)
        raise OSError("disk full")

    caplog.set_level(logging.WARNING)
    plugin = make_input(refuse)
    await plugin.start()
    try:
        sent, failed = await send(
            run_node,
            plugin,
            events=EVENTS[:1],
            requireAckResponse=True,
            ackResponseTimeout=1000,
        )
    finally:
        await plugin.stop()
    assert calls == ["app.web"]  # the record reached the handler, which failed
    assert sent == []  # so the client never got an ack
    assert [f["message"] for f in failed if f["event"] == "failed"] == ["ack response timeout"]
    assert any("records not stored" in r.getMessage() for r in caplog.records)


SECURE = {"shared_key": "s3cret-key", "self_hostname": "relaybit.test"}


def security(key: str, **extra: str) -> dict[str, str]:
    return {"clientHostname": "node.test", "sharedKey": key, **extra}


@pytest.mark.parametrize("mode", ["Message", "CompressedPackedForward"])
async def test_shared_key_handshake(mode: str, run_node: Any, store: Any, waiter: Any) -> None:
    plugin = make_input(store.emit, **SECURE)
    await plugin.start()
    try:
        sent, failed = await send(
            run_node,
            plugin,
            eventMode=mode,
            requireAckResponse=True,
            security=security("s3cret-key"),
        )
        assert failed == []
        assert sent == [0, 1, 2]
        await waiter(lambda: len(store.items) == 3)
    finally:
        await plugin.stop()
    assert sorted(store.items, key=lambda i: i[2]["n"]) == EXPECTED


async def test_wrong_shared_key_is_refused_and_nothing_arrives(
    run_node: Any, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    plugin = make_input(store.emit, **SECURE)
    await plugin.start()
    try:
        sent, failed = await send(
            run_node,
            plugin,
            requireAckResponse=True,
            security=security("wrong-key"),
            deadlineMs=1500,
        )
    finally:
        await plugin.stop()
    assert sent == []
    assert {"event": "client_error", "name": "HandshakeError"}.items() <= failed[0].items()
    assert "shared_key mismatch" in failed[0]["message"]
    assert store.items == []
    assert any("shared_key mismatch" in r.getMessage() for r in caplog.records)
    assert not any("wrong-key" in r.getMessage() for r in caplog.records)


USERS = {**SECURE, "security.users": "alice pa55word"}


@pytest.mark.parametrize(
    ("user", "password", "accepted"),
    [("alice", "pa55word", True), ("alice", "bad", False), ("mallory", "pa55word", False)],
)
async def test_user_auth(
    user: str, password: str, accepted: bool, run_node: Any, store: Any, waiter: Any
) -> None:
    plugin = make_input(store.emit, **USERS)
    await plugin.start()
    try:
        sent, failed = await send(
            run_node,
            plugin,
            requireAckResponse=True,
            security=security("s3cret-key", username=user, password=password),
            deadlineMs=5000 if accepted else 1500,
        )
        if accepted:
            await waiter(lambda: len(store.items) == 3)
    finally:
        await plugin.stop()
    if accepted:
        assert (sent, failed) == ([0, 1, 2], [])
        assert store.items == EXPECTED
    else:
        assert sent == []
        assert failed[0]["name"] == "HandshakeError"
        assert "username/password mismatch" in failed[0]["message"]
        assert store.items == []


TLS_IN = {"tls": "on", "tls.crt_file": "server.pem", "tls.key_file": "server.key"}
ONE_TAG = [{**event, "label": "app.web"} for event in EVENTS]


# fluent-logger 3.4.1 starts listening for an ack in the write callback, which
# over TLS can run after the ack came in: the ack is dropped (a client-side
# race, also with Fluentd).  So over TLS: one packet with an ack (the first
# data on an unread socket is buffered), and no ack after a handshake.
@pytest.mark.parametrize(
    ("with_key", "ack"), [(False, True), (True, False)], ids=["tls+ack", "tls+shared_key"]
)
async def test_tls(
    with_key: bool, ack: bool, certs: Path, run_node: Any, store: Any, waiter: Any
) -> None:
    values = {**TLS_IN, **(SECURE if with_key else {})}
    plugin = make_input(store.emit, certs, **values)
    await plugin.start()
    try:
        sent, failed = await send(
            run_node,
            plugin,
            events=ONE_TAG,
            eventMode="PackedForward",
            requireAckResponse=ack,
            tls={"caFile": str(certs / "ca.pem")},
            **({"security": security("s3cret-key")} if with_key else {}),
        )
        assert failed == []
        assert sent == [0, 1, 2]
        await waiter(lambda: len(store.items) == 3)
    finally:
        await plugin.stop()
    assert store.items == [("app.web", t, r) for _, t, r in EXPECTED]
