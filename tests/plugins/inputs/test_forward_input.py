import asyncio
from typing import Any

import pytest
from fluent import sender

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.loader import full_configmap
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.net.forward_client import ForwardClient
from relaybit.plugins.base import InputContext
from relaybit.plugins.inputs.forward import ForwardInput, parse_users
from relaybit.testing import wait_for


class Store:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any, Any]] = []

    async def emit(self, tag: str, data: bytes, records: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == records
        self.items.extend((tag, t, r) for t, r in got)


def make_input(store: Store, **props: str) -> ForwardInput:
    raw = [RawProperty(k.replace("__", "."), v, Origin("test.conf", 1)) for k, v in props.items()]
    raw.append(RawProperty("listen", "127.0.0.1", Origin("test.conf", 1)))
    raw.append(RawProperty("port", "0", Origin("test.conf", 1)))
    opts = full_configmap("input", ForwardInput).resolve(raw, section="[INPUT] forward")
    ctx = InputContext(name="forward.0", plugin="forward", options=opts, emit=store.emit)
    return ForwardInput(ctx)


async def test_fluent_logger_events_arrive_intact() -> None:
    store = Store()
    plugin = make_input(store)
    await plugin.start()
    try:

        def send() -> None:
            s = sender.FluentSender(
                "app", host="127.0.0.1", port=plugin.port, nanosecond_precision=True
            )
            assert s.emit_with_time("web", 1700000000.25, {"msg": "hello", "n": 1})
            assert s.emit_with_time("db", 1700000001.5, {"msg": "ünïcode", "list": [1, 2]})
            s.close()
            plain = sender.FluentSender("old", host="127.0.0.1", port=plugin.port)
            assert plain.emit_with_time("x", 1700000002, {"k": "v"})
            plain.close()

        await asyncio.to_thread(send)
        await wait_for(lambda: len(store.items) == 3)
        # in order within a connection; two connections promise no order between them
        assert [i for i in store.items if i[0].startswith("app.")] == [
            ("app.web", EventTime(1700000000, 250000000), {"msg": "hello", "n": 1}),
            ("app.db", EventTime(1700000001, 500000000), {"msg": "ünïcode", "list": [1, 2]}),
        ]
        assert ("old.x", 1700000002, {"k": "v"}) in store.items
    finally:
        await plugin.stop()


async def test_tag_prefix_and_tag_override() -> None:
    store = Store()
    prefixed = make_input(store, tag_prefix="in.")
    await prefixed.start()
    fixed = make_input(store, tag="fixed")
    await fixed.start()
    try:
        for plugin in (prefixed, fixed):
            client = await ForwardClient.connect("127.0.0.1", plugin.port)
            await client.send_chunk("orig", entry(1, {"a": 1}), 1, require_ack=True)
            await client.aclose()
        assert [i[0] for i in store.items] == ["in.orig", "fixed"]
        assert prefixed.status()["records_total"] == 1
    finally:
        await prefixed.stop()
        await fixed.stop()


async def test_shared_key_and_users_with_fluent_logger_refused() -> None:
    store = Store()
    plugin = make_input(store, shared_key="k", security__users="alice pw")
    await plugin.start()
    try:
        ok = await ForwardClient.connect(
            "127.0.0.1", plugin.port, shared_key="k", username="alice", password="pw"
        )
        await ok.send_chunk("t", entry(1, {"a": 1}), 1, require_ack=True)
        await ok.aclose()
        assert store.items == [("t", 1, {"a": 1})]
    finally:
        await plugin.stop()


def test_bad_users_and_perm_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="username password"):
        parse_users(["alice"])
    with pytest.raises(ConfigError, match="needs shared_key"):
        make_input(Store(), security__users="alice pw")
    with pytest.raises(ConfigError, match="octal"):
        make_input(Store(), unix_perm="rw")
