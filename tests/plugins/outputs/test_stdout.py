"""out_stdout formats, written to a stream."""

from __future__ import annotations

import io
import json
import subprocess
import textwrap

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, FlushResult, OutputContext
from relaybit.plugins.outputs.stdout import StdoutOutput

DATA = pack_entries([(EventTime(1700000000, 5), {"message": "hi"}), (EventTime(2, 0), {"x": 1})])


def make(stream: io.BytesIO | None, **props: str) -> StdoutOutput:
    raw = [RawProperty(k, v, Origin("test.conf", 1)) for k, v in props.items()]
    opts = (OUTPUT_COMMON + StdoutOutput.options).resolve(raw, section="[OUTPUT] stdout")
    return StdoutOutput(OutputContext(name="stdout.0", plugin="stdout", options=opts), stream)


async def test_default_format_is_fluent_bit_print() -> None:
    stream = io.BytesIO()
    out = make(stream)
    assert await out.flush(Chunk("dummy.0", DATA, 2)) is FlushResult.OK
    assert stream.getvalue().decode().splitlines() == [
        '[0] dummy.0: [[1700000000.000000005, {}], {"message"=>"hi"}]',
        '[1] dummy.0: [[2.000000000, {}], {"x"=>1}]',
    ]


async def test_json_lines_with_date_format() -> None:
    stream = io.BytesIO()
    out = make(stream, format="json_lines", json_date_key="@t", json_date_format="epoch")
    await out.flush(Chunk("t", DATA, 2))
    objs = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert objs == [{"@t": 1700000000, "message": "hi"}, {"@t": 2, "x": 1}]


async def test_json_is_an_array_per_flush() -> None:
    stream = io.BytesIO()
    out = make(stream, format="json")
    await out.flush(Chunk("t", DATA, 2))
    await out.flush(Chunk("t", DATA, 2))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and len(json.loads(lines[0])) == 2
    assert out.records == 4


async def test_write_error_asks_for_retry() -> None:
    class Broken(io.BytesIO):
        def write(self, data: object) -> int:
            raise BrokenPipeError("closed")

    out = make(Broken())
    assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.RETRY


def test_writes_to_the_real_stdout(python: str) -> None:
    code = textwrap.dedent(
        """
        import asyncio
        from relaybit.codec.msgpack import EventTime, pack_entries
        from relaybit.pipeline.chunk import Chunk
        from relaybit.plugins.base import OUTPUT_COMMON, OutputContext
        from relaybit.plugins.outputs.stdout import StdoutOutput
        opts = (OUTPUT_COMMON + StdoutOutput.options).resolve([], section="s")
        out = StdoutOutput(OutputContext(name="stdout.0", plugin="stdout", options=opts))
        data = pack_entries([(EventTime(3, 0), {"k": "v"})])
        asyncio.run(out.flush(Chunk("tag", data, 1)))
        """
    )
    done = subprocess.run([python, "-c", code], capture_output=True, timeout=30, check=True)
    assert done.stdout == b'[0] tag: [[3.000000000, {}], {"k"=>"v"}]\n'
