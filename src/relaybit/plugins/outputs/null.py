"""out_null: accept and discard every chunk (the engine's ceiling in benchmarks)."""

from __future__ import annotations

from typing import Any

from relaybit.config.schema import ConfigMap, Option
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin


class NullOutput(OutputPlugin):
    """Discards records, counting them."""

    description = "Throw away records"
    options = ConfigMap(
        tuple(
            Option(
                name,
                "str",
                None,
                "Format of the discarded records",
                no_effect="null writes nothing to format",
            )
            for name in ("format", "json_date_format", "json_date_key")
        )
    )

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        self.records = 0
        self.chunks = 0

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.records += chunk.records
        self.chunks += 1
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        return {"records": self.records, "chunks": self.chunks}

    def __repr__(self) -> str:
        return f"<NullOutput {self.ctx.name} records={self.records}>"
