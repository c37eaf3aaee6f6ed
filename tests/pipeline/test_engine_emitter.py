"""Engine.add_emitter: a filter re-emits records under a new tag through the pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_helpers import FuncFilter, ListOutput, entries

from relaybit.codec.msgpack import pack_entries
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import AddEmitterFn, EmitterFn, FilterPlugin
from relaybit.tag import compile_match


class MoveOdd(FilterPlugin):
    """Re-emits records with an odd ``n`` under ``odd.<tag>`` and drops them here."""

    def __init__(self, mem_buf_limit: int = 0) -> None:
        self.emit: EmitterFn | None = None
        self.mem_buf_limit = mem_buf_limit

    def bind_engine(self, add_emitter: AddEmitterFn) -> None:
        self.emit = add_emitter("emitter_for_move", mem_buf_limit=self.mem_buf_limit)

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        assert self.emit is not None
        odd = [e for e in entries if e[1]["n"] % 2]
        if odd:
            self.emit(f"odd.{tag}", pack_entries(odd), len(odd))
        return [e for e in entries if not e[1]["n"] % 2]


def make_engine() -> Engine:
    return Engine(EngineSettings(flush=0.0, grace=2.0))


async def test_reemitted_records_are_routed_and_filtered_under_their_new_tag() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("move.0", MoveOdd(), compile_match("app"))
    engine.add_filter("mark.0", FuncFilter(lambda r: {**r, "odd": True}), compile_match("odd.*"))
    evens, odds = ListOutput(), ListOutput()
    engine.add_output("evens", evens, compile_match("app"))
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    await emit("app", *entries(5))
    assert await engine.drain(2)
    assert evens.records == [{"n": 0}, {"n": 2}, {"n": 4}]
    assert odds.records == [{"n": 1, "odd": True}, {"n": 3, "odd": True}]
    assert {c.tag for c in odds.chunks} == {"odd.app"}
    assert engine.metrics()["input"]["emitter_for_move"]["records"] == 2
    await engine.stop()


def test_an_emitter_name_used_twice_is_refused() -> None:
    engine = make_engine()
    engine.add_filter("move.0", MoveOdd(), compile_match("app"))
    with pytest.raises(ValueError, match="emitter_for_move"):
        engine.add_filter("move.1", MoveOdd(), compile_match("app"))


async def test_an_emitter_over_its_limit_is_marked_paused_and_keeps_every_record() -> None:
    engine = make_engine()
    emit = engine.add_input("dummy.0")
    engine.add_filter("move.0", MoveOdd(mem_buf_limit=10), compile_match("app"))
    odds = ListOutput()
    engine.add_output("odds", odds, compile_match("odd.*"))
    await engine.start()
    await emit("app", *entries(40))
    assert engine.inputs["emitter_for_move"].paused_count == 1
    assert await engine.drain(2)
    assert len(odds.records) == 20
    assert not engine.inputs["emitter_for_move"].paused  # resumed once delivered
    await engine.stop()
