"""in_stdin: read records from the standard input until end of file.

Each line becomes one record: with ``parser`` set, the parsed record (or
``{"log": line}`` when it does not match); without, a line holding a JSON
object is that object (Fluent Bit reads JSON from stdin), any other line is
``{"log": line}`` (Fluent Bit drops it with an error; relaybit keeps it).
At end of file the input stops producing; the agent keeps running.

Reading happens in a daemon thread (a regular file or a terminal cannot be
polled by the event loop); it waits for each ``emit`` to return, so the
input's ``mem_buf_limit`` pauses reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from typing import Any

import msgpack
import orjson

from relaybit.codec.jsonvalue import loads as json_loads
from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.text import SURROGATES
from relaybit.config.schema import ConfigMap, Option
from relaybit.logging import counted
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.lines import LinePacker, apply_parser, lookup_parser, now_ext
from relaybit.plugins.supervisor import RESTART_BASE, RESTART_CAP


class StdinInput(InputPlugin):
    """Reads lines from stdin (or ``fd``); emits one record per line."""

    description = "Standard input"
    options = ConfigMap(
        (
            Option("parser", "str", None, "Name of a [PARSER] applied to each line"),
            Option("buffer_size", "size", 16 * 1024, "Bytes read at once", minimum=1),
            Option("key", "str", "log", "Key of the line when it is not JSON or not parsed"),
        )
    )

    def __init__(self, ctx: InputContext, fd: int | None = None) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.fd = fd
        self.buffer_size = max(opts.int("buffer_size"), 4096)
        self.key = opts.str("key") or "log"
        self.parser = lookup_parser(
            opts.opt_str("parser"), ctx.service, ctx_options=opts, section=f"[INPUT] {ctx.name}"
        )
        self.tag = ctx.tag or ctx.name
        self._lines = LinePacker(self.key)
        self._packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors=SURROGATES)
        self._pending = b""
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.done = asyncio.Event()
        self.records = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self.fd if self.fd is not None else sys.stdin.fileno()
        self._thread = threading.Thread(
            target=self._reader, args=(loop, fd), name=f"{self.ctx.name}.stdin", daemon=True
        )
        self._thread.start()

    def _reader(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    data = os.read(fd, self.buffer_size)
                except OSError as exc:
                    self.ctx.logger.error("cannot read stdin: %s", exc)
                    break
                if self._stopping.is_set():
                    break
                if not self._handled(loop, data) or not data:
                    break
        except (RuntimeError, asyncio.CancelledError):
            pass  # the loop closed or the input was stopped
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.done.set)

    def _handled(self, loop: asyncio.AbstractEventLoop, data: bytes) -> bool:
        """Hand ``data`` to the loop; an unexpected error is logged once and the same
        data handed again after a backoff (the input never dies); False: stopping."""
        delay = RESTART_BASE
        while True:
            future = asyncio.run_coroutine_threadsafe(self._handle(data, eof=not data), loop)
            try:
                future.result()
                return True
            except (RuntimeError, asyncio.CancelledError):
                raise
            except Exception as exc:  # counted and logged as the supervisor of other inputs does
                self.restarts.failed(exc, self.ctx.logger, "stdin", delay)
            if self._stopping.wait(delay):
                return False
            delay = min(delay * 2, RESTART_CAP)

    async def _handle(self, data: bytes, *, eof: bool) -> None:
        buf = self._pending + data
        lines = buf.split(b"\n")
        pending = lines.pop()
        if eof and pending:
            lines.append(pending)
            pending = b""
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        if lines:  # the emit may raise: then nothing changed, the same data comes again
            await self.ctx.emit(self.tag, self._pack(lines), len(lines))
            self.records += len(lines)
        self._pending = pending
        if eof:
            self.ctx.logger.info("end of input after %s", counted(self.records, "record"))

    def _pack(self, lines: list[bytes]) -> bytes:
        stamp = now_ext(self.ctx.clock)
        out: list[bytes] = []
        now: EventTime | None = None
        for line in lines:
            record: Any = None
            when: Any = None
            if self.parser is not None:
                parsed = apply_parser(self.parser, line.decode("utf-8", "surrogateescape"))
                if parsed is not None:
                    when, record = parsed
            elif line[:1] == b"{":
                with contextlib.suppress(orjson.JSONDecodeError):
                    obj = json_loads(line)
                    record = obj if isinstance(obj, dict) else None
            if record is None:
                out.append(self._lines.pack([line], stamp))
                continue
            if when is None:
                now = now or EventTime.from_float(self.ctx.clock.time())
                when = now
            elif isinstance(when, float):
                when = EventTime.from_float(when)
            out.append(self._packer.pack([when, record]))
        return b"".join(out)

    async def stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        """Return once end of file was reached and everything read was emitted."""
        await self.done.wait()

    def status(self) -> dict[str, Any]:
        return {"records": self.records, "eof": self.done.is_set()}

    def __repr__(self) -> str:
        return f"<StdinInput {self.ctx.name} records={self.records}>"
