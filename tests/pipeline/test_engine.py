"""The engine with test-local plugins: routing, retries, drops, backpressure, filters, stop."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from pipeline_helpers import FuncFilter, GateOutput, ListOutput, ScriptedOutput, entries

from relaybit.monitoring.events import EventHub, RetryExhausted, RetryScheduled
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.pipeline.scheduler import Scheduler
from relaybit.plugins.base import FlushResult
from relaybit.tag import compile_match
from relaybit.testing import wait_for

OK, RETRY, ERROR = FlushResult.OK, FlushResult.RETRY, FlushResult.ERROR


def make_engine(**settings: object) -> Engine:
    values: dict[str, object] = {"flush": 0.0, "grace": 2.0}
    values.update(settings)
    return Engine(
        EngineSettings(**values),  # type: ignore[arg-type]
        scheduler=Scheduler(0.001, 0.004, slack=0.0, rng=random.Random(1)),
    )


async def test_chunk_goes_to_every_matching_output_and_is_done_when_all_confirmed() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    every, app, rx, other = ListOutput(), ListOutput(), ListOutput(), ListOutput()
    gate = GateOutput()
    engine.add_output("all.0", every, compile_match("*"))
    engine.add_output("app.0", app, compile_match("app.*"))
    engine.add_output("rx.0", rx, compile_match(None, r"^app\.w"))
    engine.add_output("other.0", other, compile_match("sys.*"))
    engine.add_output("gate.0", gate, compile_match("app.web"))
    await engine.start()
    await emit("app.web", *entries(3))
    await emit("sys.log", *entries(2, start=10))
    engine.flush_now()
    await wait_for(lambda: len(every.chunks) == 2 and gate.started.is_set())
    assert len(app.records) == 3 and len(rx.records) == 3
    assert other.records == [{"n": 10}, {"n": 11}]
    # the app.web chunk waits for the gated output; its memory is still held
    assert engine.pending_chunks == 1
    assert engine.inputs["dummy.0"].held == len(app.chunks[0].data)
    gate.gate.set()
    assert await engine.drain(2)
    assert engine.pending_chunks == 0 and engine.inputs["dummy.0"].held == 0
    metrics = engine.metrics()
    assert metrics["input"]["dummy.0"]["records"] == 5
    assert metrics["output"]["all.0"]["proc_records"] == 5
    assert metrics["output"]["gate.0"]["proc_records"] == 3
    await engine.stop()


async def test_retry_with_backoff_then_ok() -> None:
    hub = EventHub()
    seen: list[object] = []
    hub.add_listener(seen.append)
    engine = make_engine()
    engine.events = hub
    emit = engine.add_input("dummy.0")
    out = ScriptedOutput([RETRY, RETRY])
    engine.add_output("out.0", out, compile_match("*"), retry_limit="5")
    await engine.start()
    await emit("t", *entries(4))
    assert await engine.drain(2)
    assert len(out.calls) == 3 and len(out.accepted) == 1
    m = engine.metrics()["output"]["out.0"]
    assert (m["retries"], m["retries_failed"], m["proc_records"], m["dropped_records"]) == (
        2,
        0,
        4,
        0,
    )
    assert [e.attempt for e in seen if isinstance(e, RetryScheduled)] == [1, 2]
    await engine.stop()


async def test_retry_limit_reached_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    out = ScriptedOutput([], then=RETRY)
    engine.add_output("out.0", out, compile_match("*"), retry_limit="2")
    await engine.start()
    with caplog.at_level(logging.INFO, logger="relaybit"):
        await emit("t", *entries(7))
        assert await engine.drain(2)
    assert len(out.calls) == 3  # first attempt + 2 retries
    m = engine.metrics()["output"]["out.0"]
    assert (m["retries"], m["retries_failed"], m["dropped_records"]) == (2, 1, 7)
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1 and "retry limit reached" in drops[0].getMessage()
    assert "7 records" in drops[0].getMessage()
    await engine.stop()


async def test_no_retries_drops_at_first_retry(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub()
    seen: list[object] = []
    hub.add_listener(seen.append)
    engine = make_engine()
    engine.events = hub
    emit = engine.add_input("dummy.0")
    out = ScriptedOutput([], then=RETRY)
    engine.add_output("out.0", out, compile_match("*"), retry_limit="no_retries")
    await engine.start()
    await emit("t", *entries(2))
    assert await engine.drain(2)
    assert len(out.calls) == 1
    assert engine.metrics()["output"]["out.0"]["retries_failed"] == 1
    assert [e.reason for e in seen if isinstance(e, RetryExhausted)] == [
        "retry limit reached (no_retries)"
    ]
    assert "retry limit reached" in caplog.text
    await engine.stop()


async def test_error_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    bad, good = ScriptedOutput([ERROR]), ListOutput()
    engine.add_output("bad.0", bad, compile_match("*"), retry_limit="no_limits")
    engine.add_output("good.0", good, compile_match("*"))
    await engine.start()
    await emit("t", *entries(3))
    assert await engine.drain(2)
    m = engine.metrics()["output"]
    assert (m["bad.0"]["errors"], m["bad.0"]["dropped_records"], m["bad.0"]["retries"]) == (1, 3, 0)
    assert m["good.0"]["proc_records"] == 3
    assert "output error" in caplog.text
    await engine.stop()


async def test_flush_exception_is_retried_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    class Boom(ScriptedOutput):
        async def flush(self, chunk):  # type: ignore[no-untyped-def]
            if not self.calls:
                self.calls.append(chunk)
                raise RuntimeError("plugin bug")
            return await super().flush(chunk)

    engine = make_engine()
    emit = engine.add_input("dummy.0")
    out = Boom([])
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(1))
    assert await engine.drain(2)
    assert len(out.accepted) == 1 and "plugin bug" in caplog.text
    await engine.stop()


async def test_mem_buf_limit_pauses_then_resumes(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    emit = engine.add_input("tcp.0", mem_buf_limit=100)
    gate = GateOutput()
    engine.add_output("out.0", gate, compile_match("*"))
    await engine.start()
    data, n = entries(20)
    assert len(data) > 100
    with caplog.at_level(logging.INFO, logger="relaybit"):
        blocked = asyncio.create_task(emit("t", data, n))
        await wait_for(lambda: gate.started.is_set())
        assert not blocked.done()  # the input waits while over the limit
        assert engine.inputs["tcp.0"].paused
        gate.gate.set()
        await asyncio.wait_for(blocked, 2)
    assert not engine.inputs["tcp.0"].paused
    assert engine.metrics()["input"]["tcp.0"]["paused"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("tcp.0 paused (mem buf overlimit)") == 1
    assert messages.count("tcp.0 resume (mem buf overlimit)") == 1
    assert len(gate.chunks) == 1
    await engine.stop()


async def test_filters_apply_only_where_they_match() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    add = FuncFilter(lambda r: {**r, "env": "prod"})
    drop_odd = FuncFilter(lambda r: r if r["n"] % 2 == 0 else None)
    engine.add_filter("modify.0", add, compile_match("app.*"))
    engine.add_filter("grep.0", drop_odd, compile_match("app.web"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("app.web", *entries(4))
    await emit("app.db", *entries(2))
    await emit("sys", *entries(1))
    assert await engine.drain(2)
    by_tag = {c.tag: c for c in out.chunks}
    assert by_tag["app.web"].records == 2
    from pipeline_helpers import records_of

    assert records_of([by_tag["app.web"]]) == [{"n": 0, "env": "prod"}, {"n": 2, "env": "prod"}]
    assert records_of([by_tag["app.db"]]) == [{"n": 0, "env": "prod"}, {"n": 1, "env": "prod"}]
    assert records_of([by_tag["sys"]]) == [{"n": 0}]
    assert (add.calls, drop_odd.calls) == (2, 1)
    await engine.stop()


async def test_large_emits_seal_at_chunk_size_limit() -> None:
    engine = Engine(EngineSettings(flush=0), chunk_size_limit=1000)
    emit = engine.add_input("dummy.0")
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    for i in range(10):
        await emit("t", *entries(50, start=i * 50))
    await wait_for(lambda: len(out.chunks) >= 5)
    assert await engine.drain(2)
    assert [r["n"] for r in out.records] == list(range(500))
    await engine.stop()


async def test_flush_timer_seals_and_delivers() -> None:
    engine = make_engine(flush=0.01)
    emit = engine.add_input("dummy.0")
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(3))
    await wait_for(lambda: len(out.records) == 3)
    await engine.stop()


async def test_graceful_stop_flushes_pending_retries_within_grace() -> None:
    engine = Engine(
        EngineSettings(flush=0, grace=2),
        scheduler=Scheduler(100, 200, slack=0.0, rng=random.Random(1)),
    )
    emit = engine.add_input("dummy.0")
    out = ScriptedOutput([RETRY])
    engine.add_output("out.0", out, compile_match("*"), retry_limit="no_limits")
    await engine.start()
    await emit("t", *entries(5))
    engine.flush_now()
    await wait_for(lambda: engine.outputs["out.0"].waiting != set())
    # the retry would wait 100+ s; stopping retries it at once
    assert await engine.stop() == 0
    assert len(out.accepted) == 1


async def test_stop_reports_memory_records_lost(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(grace=0.05)
    emit = engine.add_input("dummy.0")
    engine.add_output("out.0", GateOutput(), compile_match("*"))
    await engine.start()
    await emit("t", *entries(6))
    assert await engine.stop() == 6
    assert "6 records in 1 chunk were not delivered within the grace period and are lost" in (
        caplog.text
    )
    assert engine.status()["lost_records"] == 6


async def test_unrouted_tag_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_output("out.0", ListOutput(), compile_match("app.*"))
    await engine.start()
    await emit("nope", *entries(1))
    await emit("nope", *entries(1))
    assert caplog.text.count("no output matches tag 'nope'") == 1
    assert engine.pending_chunks == 0
    await engine.stop()


async def test_counts_of_one_are_singular(caplog: pytest.LogCaptureFixture) -> None:
    # "1 records (1 bytes ...)", "1 records in 1 chunks were" read wrong
    engine = make_engine(grace=0.05)
    emit = engine.add_input("dummy.0")
    engine.add_output("bad.0", ScriptedOutput([ERROR]), compile_match("bad"))
    engine.add_output("gate.0", GateOutput(), compile_match("gate"))
    await engine.start()
    with caplog.at_level(logging.INFO, logger="relaybit"):
        await emit("bad", *entries(1))
        assert await engine.drain(2)
        await emit("gate", *entries(1))
        assert await engine.stop() == 1
    (drop,) = [r.getMessage() for r in caplog.records if "dropped:" in r.getMessage()]
    assert "; 1 record (" in drop and " bytes, tag 'bad') not delivered" in drop
    assert (
        "shutdown: 1 record in 1 chunk was not delivered within the grace period and is lost"
        in (caplog.text)
    )
