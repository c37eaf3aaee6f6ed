"""The engine's filter chain and processors: one decode per batch, output processors on a copy."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_helpers import FuncFilter, ListOutput, ScriptedOutput, entries, records_of

import relaybit.pipeline.filter_chain as filter_chain
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import FlushResult
from relaybit.tag import compile_match


def make_engine() -> Engine:
    return Engine(EngineSettings(flush=0.0, grace=2.0))


def mark(key: str) -> FuncFilter:
    return FuncFilter(lambda r: {**r, key: True})


async def test_a_batch_is_decoded_once_for_every_processor_and_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes: list[int] = []
    real = filter_chain.decode_entries

    def counting(data: bytes) -> list[Any]:
        decodes.append(len(data))
        return real(data)

    monkeypatch.setattr(filter_chain, "decode_entries", counting)
    engine = make_engine()
    emit = engine.add_input("in.0", processors=[("p1", mark("p1")), ("p2", mark("p2"))])
    for i in range(4):
        engine.add_filter(f"f{i}", mark(f"f{i}"), compile_match("*"))
    out = ListOutput()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    await emit("t", *entries(3))
    assert await engine.drain(2)
    await engine.stop()
    assert len(decodes) == 1
    assert out.records == [
        {"n": i, "p1": True, "p2": True, "f0": True, "f1": True, "f2": True, "f3": True}
        for i in range(3)
    ]


async def test_output_processors_change_only_what_that_output_sends() -> None:
    engine = make_engine()
    emit = engine.add_input("in.0")
    retried = ScriptedOutput([FlushResult.RETRY])
    plain = ListOutput()
    engine.add_output("a", retried, compile_match("*"), processors=[("p", mark("seen"))])
    engine.add_output("b", plain, compile_match("*"))
    engine.scheduler.base = engine.scheduler.cap = 0.001
    engine.scheduler.slack = 0.0
    await engine.start()
    await emit("t", *entries(2))
    assert await engine.drain(5)
    await engine.stop()
    # the retry ran the processor again on the original records: marked once, not twice
    assert [records_of([c]) for c in retried.calls] == [
        [{"n": 0, "seen": True}, {"n": 1, "seen": True}]
    ] * 2
    assert plain.records == [{"n": 0}, {"n": 1}]


async def test_an_output_whose_processors_drop_everything_is_done() -> None:
    engine = make_engine()
    emit = engine.add_input("in.0")
    out = ScriptedOutput([])
    engine.add_output(
        "a", out, compile_match("*"), processors=[("drop", FuncFilter(lambda r: None))]
    )
    await engine.start()
    await emit("t", *entries(2))
    assert await engine.drain(2)
    await engine.stop()
    assert out.calls == []
    assert engine.pending_chunks == 0
