"""in_dummy: record, rate, samples, copies, timestamps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, ext_hook, iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.dummy import DummyInput


class Collector:
    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []
        self.raw: list[bytes] = []
        self.calls = 0

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        assert tag == "dummy.0"
        got = list(iter_entries(data))
        assert len(got) == records
        self.calls += 1
        self.raw.append(data)
        self.entries.extend(got)


def make(got: Collector, **props: str) -> DummyInput:
    raw = [RawProperty(k, v, Origin("d.conf", i + 1)) for i, (k, v) in enumerate(props.items())]
    opts = (INPUT_COMMON + DummyInput.options).resolve(raw, section="[INPUT] dummy")
    return DummyInput(InputContext(name="dummy.0", plugin="dummy", options=opts, emit=got))


async def test_samples_and_copies() -> None:
    got = Collector()
    plugin = make(got, rate="200", samples="5", copies="3", dummy='{"a":1}')
    await plugin.start()
    await asyncio.wait_for(plugin.wait(), 10)
    assert [r for _, r in got.entries] == [{"a": 1}] * 15
    assert all(isinstance(t, EventTime) for t, _ in got.entries)
    assert plugin.status() == {"ticks": 5, "records": 15}
    await plugin.stop()


async def test_rate_is_respected_and_batched() -> None:
    got = Collector()
    plugin = make(got, rate="20000", samples="4000", flush_on_startup="on")
    started = time.monotonic()
    await plugin.start()
    await asyncio.wait_for(plugin.wait(), 10)
    elapsed = time.monotonic() - started
    assert len(got.entries) == 4000
    assert got.entries[0][1] == {"message": "dummy"}
    assert elapsed >= 0.15  # 4000 ticks at 20000/s take about 0.2 s, not less
    assert got.calls < 4000 / 10  # many ticks per emit
    await plugin.stop()


async def test_array_metadata_and_fixed_start_time() -> None:
    got = Collector()
    plugin = make(
        got,
        dummy='[{"n":1},{"n":2}]',
        metadata='{"m":true}',
        samples="2",
        rate="100",
        start_time_sec="1000",
        start_time_nsec="5",
        fixed_timestamp="on",
    )
    await plugin.start()
    await asyncio.wait_for(plugin.wait(), 10)
    assert [r for _, r in got.entries] == [{"n": 1}, {"n": 2}, {"n": 1}, {"n": 2}]
    assert {t for t, _ in got.entries} == {EventTime(1000, 5)}
    first = msgpack.unpackb(got.raw[0][: len(got.raw[0]) // 2], ext_hook=ext_hook)
    assert first == [[EventTime(1000, 5), {"m": True}], {"n": 1}]
    await plugin.stop()


async def test_stop_while_running_forever() -> None:
    got = Collector()
    plugin = make(got, rate="1000")
    await plugin.start()
    deadline = time.monotonic() + 5
    while len(got.entries) < 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await plugin.stop()
    count = len(got.entries)
    assert count >= 10
    assert "DummyInput dummy.0" in repr(plugin)


@pytest.mark.parametrize(
    ("key", "value"), [("dummy", "{nope"), ("dummy", "[1]"), ("metadata", "[]")]
)
def test_bad_json_is_a_config_error(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"d.conf:1.*'{key}'"):
        make(Collector(), **{key: value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", "expected a rate above 0 records per second, got -1"),
        ("0", "expected a rate above 0 records per second, got 0"),
        ("nan", "expected a rate above 0 records per second, got nan"),
        ("inf", "expected a finite number of records per second, got inf"),
    ],
)
def test_a_rate_that_is_not_above_0_says_so(value: str, expected: str) -> None:
    # it said "expected at least 1e-06"
    with pytest.raises(ConfigError) as info:
        make(Collector(), rate=value)
    assert str(info.value) == f"d.conf:1: [INPUT] dummy.0 'rate': {expected}"


def test_a_fractional_rate_is_accepted() -> None:
    assert make(Collector(), rate="0.5").interval == 2.0


async def test_a_lone_surrogate_escape_in_the_record_is_written_as_fluent_bit_writes_it() -> None:
    # orjson refused the option ("invalid JSON"); Fluent Bit 5.1.1 emits U+FFFD
    got = Collector()
    plugin = make(got, rate="100", samples="1", dummy='{"msg": "\\ud800"}')
    await plugin.start()
    await asyncio.wait_for(plugin.wait(), 10)
    await plugin.stop()
    assert [r for _, r in got.entries] == [{"msg": "\ufffd"}]
    assert b"\xef\xbf\xbd" in got.raw[0]
