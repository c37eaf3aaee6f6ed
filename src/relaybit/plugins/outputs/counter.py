"""out_counter: print ``timestamp,count (total = N)`` per flush, as Fluent Bit."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin


class CounterOutput(OutputPlugin):
    """Counts records: one line per flush with the chunk's count and the running total."""

    description = "Records counter"

    def __init__(self, ctx: OutputContext, stream: BinaryIO | None = None) -> None:
        super().__init__(ctx)
        self._stream = stream
        self.total = 0

    def line(self, count: int) -> bytes:
        """The line printed for a flush of ``count`` records (after adding them)."""
        return f"{self.ctx.clock.time():f},{count} (total = {self.total})\n".encode()

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.total += chunk.records
        stream = self._stream if self._stream is not None else sys.stdout.buffer
        try:
            stream.write(self.line(chunk.records))
            stream.flush()
        except OSError as exc:
            self.ctx.logger.warning("cannot write to stdout: %s", exc)
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        return {"total": self.total}

    def __repr__(self) -> str:
        return f"<CounterOutput {self.ctx.name} total={self.total}>"
