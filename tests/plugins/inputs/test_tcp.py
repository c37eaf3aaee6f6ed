"""in_tcp with real socket clients: JSON (lines and concatenated), none, many clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from input_helpers import until

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.tcp import TcpInput, split_json


class Collector:
    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == records and tag == "tcp.0"
        self.entries.extend(got)

    @property
    def records(self) -> list[Any]:
        return [r for _, r in self.entries]


async def serve(got: Collector, running: list[TcpInput], **props: str) -> TcpInput:
    props = {"listen": "127.0.0.1", "port": "0", **props}
    raw = [RawProperty(k, v, Origin("t.conf", 1)) for k, v in props.items()]
    opts = (INPUT_COMMON + TcpInput.options).resolve(raw, section="[INPUT] tcp")
    plugin = TcpInput(InputContext(name="tcp.0", plugin="tcp", options=opts, emit=got))
    await plugin.start()
    running.append(plugin)
    return plugin


async def send(port: int, *parts: bytes) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for part in parts:
        writer.write(part)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_json_lines_and_concatenated_objects(running: list[TcpInput]) -> None:
    got = Collector()
    plugin = await serve(got, running)
    await send(plugin.port, b'{"a":1}\n{"b":', b'2}{"c":3}\n', b'{"d":4}')
    await until(lambda: len(got.entries) == 4)
    assert got.records == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]
    assert all(isinstance(t, EventTime) for t, _ in got.entries)


async def test_malformed_json_is_skipped_and_the_connection_kept(running: list[TcpInput]) -> None:
    got = Collector()
    plugin = await serve(got, running, source_address_key="src")
    await send(plugin.port, b'{"ok":1}\nnot json\n{"ok":2}\n')
    await until(lambda: len(got.entries) == 2)
    assert [r["ok"] for r in got.records] == [1, 2]
    assert got.records[0]["src"].startswith("tcp://127.0.0.1:")
    assert plugin.status()["malformed"] == 1


async def test_json_that_is_not_an_object_is_counted_and_logged_not_dropped_silently(
    running: list[TcpInput], caplog: pytest.LogCaptureFixture
) -> None:
    got = Collector()
    plugin = await serve(got, running)
    await send(plugin.port, b'[1, {"in": "array"}]\n"text"\n42\n{"ok": 1}\n')
    await until(lambda: len(got.entries) == 2)
    await until(lambda: plugin.status()["malformed"] == 3)
    assert got.records == [{"in": "array"}, {"ok": 1}]
    warnings = [r.getMessage() for r in caplog.records if "not an object" in r.getMessage()]
    assert len(warnings) == 1  # once per connection


async def test_format_none_with_separator(running: list[TcpInput]) -> None:
    got = Collector()
    plugin = await serve(got, running, format="none", separator="\\r\\n")
    await send(plugin.port, b"one\r\ntw", b"o\r\nthree")
    await until(lambda: len(got.entries) == 3)
    assert got.records == [{"log": "one"}, {"log": "two"}, {"log": "three"}]


async def test_many_clients_at_once(running: list[TcpInput]) -> None:
    got = Collector()
    plugin = await serve(got, running, format="none")

    async def client(n: int) -> None:
        await send(plugin.port, b"".join(f"{n}-{i}\n".encode() for i in range(500)))

    await asyncio.gather(*(client(n) for n in range(20)))
    await until(lambda: len(got.entries) == 20 * 500)
    assert sorted(r["log"] for r in got.records) == sorted(
        f"{n}-{i}" for n in range(20) for i in range(500)
    )
    assert plugin.status()["connections"] == 20


async def test_stop_closes_open_clients(running: list[TcpInput]) -> None:
    got = Collector()
    plugin = await serve(got, running)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(b'{"x":1}\n')
    await writer.drain()
    await until(lambda: len(got.entries) == 1)
    await plugin.stop()
    running.clear()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()


def test_split_json_keeps_the_incomplete_rest() -> None:
    assert split_json(b'{"a":1}{"b"') == ([{"a": 1}], 0, b'{"b"')
    assert split_json(b'{"a":1}\n[{"b":2}]\nbad\n') == ([{"a": 1}, [{"b": 2}]], 1, b"")


async def test_json_values_msgpack_cannot_take_as_is_neither_kill_the_connection(
    running: list[TcpInput],
) -> None:
    # orjson refuses a lone surrogate and deep nesting; the stdlib
    # fallback gave values msgpack could not encode (OverflowError) or raised
    # RecursionError: the connection task died and the whole read was lost
    got = Collector()
    plugin = await serve(got, running)
    deep = b'{"a":' * 1100 + b"1" + b"}" * 1100
    await send(
        plugin.port,
        b'{"ok":1}\n{"big":123456789012345678901234567890,"s":"cut \\ud83d"}\n'
        + deep
        + b'\n{"ok":2}\n',
    )
    await until(lambda: len(got.records) == 3)
    assert got.records == [
        {"ok": 1},
        {"big": "123456789012345678901234567890", "s": "cut \ufffd"},  # as Fluent Bit
        {"ok": 2},
    ]
    assert plugin.malformed == 1


async def test_a_connection_that_fails_on_a_bug_is_closed_and_the_input_goes_on(
    running: list[TcpInput], caplog: pytest.LogCaptureFixture
) -> None:
    class Buggy(Collector):
        calls = 0

        async def __call__(self, tag: str, data: bytes, records: int) -> None:
            self.calls += 1
            if self.calls <= 2:
                {}["a bug"]  # KeyError, as a real bug raises it
            await super().__call__(tag, data, records)

    got = Buggy()
    plugin = await serve(got, running)
    await send(plugin.port, b'{"a":1}\n')
    await send(plugin.port, b'{"b":2}\n')
    await until(lambda: got.calls == 2)
    await send(plugin.port, b'{"c":3}\n')  # new connections are still served
    await until(lambda: got.records == [{"c": 3}])
    errors = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(errors) == 1 and "KeyError" in errors[0]  # once per kind, not per connection


async def test_a_lone_surrogate_escape_is_written_as_fluent_bit_writes_it(
    running: list[TcpInput],
) -> None:
    # U+FFFD (EF BF BD), as Fluent Bit 5.1.1's tcp input with format json; bytes of the
    # line that are not UTF-8 stay those bytes
    got = Collector()
    plugin = await serve(got, running)
    deep = b'{"a":' * 700 + b'"\\ud800"' + b"}" * 700  # too deep for the stdlib: malformed
    await send(
        plugin.port,
        b'{"msg":"\\ud800x"}\n{"a":"\\udc80","raw":"\xff"}{"b":"\\ud800"}\n' + deep + b"\n",
    )
    await until(lambda: plugin.malformed == 1)
    assert got.records == [{"msg": "\ufffdx"}, {"a": "\udc80", "raw": "\udcff"}, {"b": "\ufffd"}]
