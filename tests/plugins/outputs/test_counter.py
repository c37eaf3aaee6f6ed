"""out_counter prints 'timestamp,count (total = N)' per flush."""

from __future__ import annotations

import io
import re

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, FlushResult, OutputContext
from relaybit.plugins.outputs.counter import CounterOutput


async def test_counter_lines_and_total() -> None:
    opts = (OUTPUT_COMMON + CounterOutput.options).resolve([], section="[OUTPUT] counter")
    stream = io.BytesIO()
    out = CounterOutput(OutputContext(name="counter.0", plugin="counter", options=opts), stream)
    data = pack_entries([(EventTime(1, 0), {"a": 1})] * 4)
    assert await out.flush(Chunk("t", data, 4)) is FlushResult.OK
    assert await out.flush(Chunk("t", data[: len(data) // 2], 2)) is FlushResult.OK
    lines = stream.getvalue().decode().splitlines()
    assert re.fullmatch(r"\d+\.\d{6},4 \(total = 4\)", lines[0])
    assert re.fullmatch(r"\d+\.\d{6},2 \(total = 6\)", lines[1])
    assert out.status() == {"total": 6}
