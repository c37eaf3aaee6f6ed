"""out_null discards and counts."""

from __future__ import annotations

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.schema import ConfigMap
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, FlushResult, OutputContext
from relaybit.plugins.outputs.null import NullOutput


async def test_null_accepts_and_counts() -> None:
    opts = (OUTPUT_COMMON + NullOutput.options).resolve([], section="[OUTPUT] null")
    out = NullOutput(OutputContext(name="null.0", plugin="null", options=opts))
    data = pack_entries([(EventTime(1, 0), {"a": 1})] * 3)
    assert await out.flush(Chunk("t", data, 3)) is FlushResult.OK
    assert await out.flush(Chunk("t", data, 3)) is FlushResult.OK
    assert out.status() == {"records": 6, "chunks": 2}
    assert "records=6" in repr(out)
    assert isinstance(NullOutput.options, ConfigMap)
