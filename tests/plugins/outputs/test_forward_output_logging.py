"""The forward output logs one 'not delivered' line while the same nodes keep failing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime
from relaybit.config.loader import full_configmap
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext
from relaybit.plugins.outputs.forward.output import ForwardOutput
from relaybit.testing import closed_port, make_node, make_spec


def chunk() -> Chunk:
    return Chunk(tag="app", data=entry(EventTime(1700000000, 0), {"n": 1}), records=1)


async def test_one_line_while_every_node_keeps_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = make_spec(*(make_node(f"node-{i}", closed_port()) for i in (1, 2, 3)))
    opts = full_configmap("output", ForwardOutput).resolve([], section="[OUTPUT] forward")
    output = ForwardOutput(
        OutputContext(
            name="forward.0", plugin="forward", options=opts, upstream=spec, config_dir=tmp_path
        )
    )
    await output.start()
    try:
        with caplog.at_level(logging.WARNING):
            results = [await output.flush(chunk()) for _ in range(6)]
    finally:
        await output.stop()
    assert results == [FlushResult.RETRY] * 6
    lines = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
