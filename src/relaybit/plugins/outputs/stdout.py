"""out_stdout: print each chunk to standard output (Fluent Bit's formats)."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

from relaybit.config.schema import ConfigMap, Option
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin
from relaybit.plugins.outputs.formats import (
    DATE_FORMATS,
    date_key_option,
    format_human,
    format_records,
)


class StdoutOutput(OutputPlugin):
    """Writes records to stdout: Fluent Bit's human print (``msgpack``) or JSON."""

    description = "Print records to the standard output"
    options = ConfigMap(
        (
            Option(
                "format",
                "str",
                "msgpack",
                "msgpack (Fluent Bit's '[0] tag: [[time, {}], {...}]' print), json, json_lines or json_stream",
                choices=("msgpack", "json", "json_lines", "json_stream"),
            ),
            Option(
                "json_date_key", "str", "date", "Key of the time in JSON formats; false to omit"
            ),
            Option(
                "json_date_format",
                "str",
                "double",
                "Time format in JSON formats",
                choices=DATE_FORMATS,
            ),
        )
    )

    def __init__(self, ctx: OutputContext, stream: BinaryIO | None = None) -> None:
        super().__init__(ctx)
        self._stream = stream
        self.format = ctx.options.str("format").lower()
        self.date_key = date_key_option(ctx.options.opt_str("json_date_key"))
        self.date_format = ctx.options.str("json_date_format").lower()
        self.records = 0

    @property
    def stream(self) -> BinaryIO:
        return self._stream if self._stream is not None else sys.stdout.buffer

    def render(self, chunk: Chunk) -> bytes:
        """The bytes this output writes for ``chunk``."""
        if self.format == "msgpack":
            return format_human(chunk.data, chunk.tag)
        data = format_records(
            chunk.data,
            chunk.tag,
            self.format,
            date_key=self.date_key,
            date_format=self.date_format,
        )
        return data + b"\n" if self.format == "json" else data

    async def flush(self, chunk: Chunk) -> FlushResult:
        data = self.render(chunk)
        try:
            stream = self.stream
            stream.write(data)
            stream.flush()
        except OSError as exc:
            self.ctx.logger.warning("cannot write to stdout: %s", exc)
            return FlushResult.RETRY
        self.records += chunk.records
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        return {"records": self.records}

    def __repr__(self) -> str:
        return f"<StdoutOutput {self.ctx.name} format={self.format} records={self.records}>"
