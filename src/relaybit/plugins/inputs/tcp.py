"""in_tcp: records over plain TCP, as JSON objects or separated lines.

``format json`` accepts JSON objects one per line or concatenated
(``{"a":1}{"b":2}``), as Fluent Bit's JSON stream parser does.  A malformed
JSON line is skipped and logged once per connection (the count is kept);
the connection stays open.  ``format none`` emits ``{"log": line}`` for each
``separator``-terminated piece.  Each connection reads ``chunk_size`` bytes at
a time and waits for ``emit`` to return (backpressure: a paused input stops
reading its sockets).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import msgpack
import orjson

from relaybit.codec.jsonvalue import loads as json_loads
from relaybit.codec.jsonvalue import msgpack_safe
from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.text import SURROGATES
from relaybit.config.schema import ConfigMap, Option
from relaybit.parsers.packing import ParsedLines, entry_head
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.lines import LinePacker, Parser, lookup_parser, now_ext
from relaybit.plugins.inputs.stream_clients import (
    SERVER_TLS_OPTIONS,
    STREAM_LIMIT_OPTIONS,
    StreamClients,
    start_tcp_server,
    tls_server,
)

_DECODER = json.JSONDecoder()
_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\0": "\0"}


def unescape(text: str) -> bytes:
    """A separator as written in a config file (``\\r\\n`` -> CR LF)."""
    for escaped, char in _ESCAPES.items():
        text = text.replace(escaped, char)
    return text.encode()


def split_json(buf: bytes) -> tuple[list[Any], int, bytes]:
    """Complete JSON values in ``buf``: (values, malformed pieces, the incomplete rest).

    Pieces are separated by newlines; within one, concatenated objects are
    accepted.  The rest after the last newline is kept when it is an
    incomplete value, else parsed too.
    """
    values: list[Any] = []
    bad = 0
    pieces = buf.split(b"\n")
    rest = pieces.pop()
    for piece in pieces:
        if not piece.strip():
            continue
        try:
            values.append(json_loads(piece))
        except orjson.JSONDecodeError:
            got, ok = _concatenated(piece)
            values.extend(got)
            bad += 0 if ok else 1
    if rest.strip():
        got, ok = _concatenated(rest)
        values.extend(got)
        if got and not ok:
            rest = _leftover(rest)
        elif got:
            rest = b""
    return values, bad, rest


def _concatenated(piece: bytes) -> tuple[list[Any], bool]:
    try:  # UTF-8: every surrogate in a value is an escape (U+FFFD)
        text, raw_bytes = piece.decode("utf-8"), False
    except UnicodeDecodeError:  # bytes that are not UTF-8 stay those bytes
        text, raw_bytes = piece.decode("utf-8", "surrogateescape"), True
    values: list[Any] = []
    pos = 0
    end = len(text)
    while pos < end:
        while pos < end and text[pos] in " \t\r":
            pos += 1
        if pos >= end:
            break
        try:
            value, pos = _DECODER.raw_decode(text, pos)
            values.append(msgpack_safe(value, raw_bytes=raw_bytes))
        except (json.JSONDecodeError, RecursionError):
            return values, False
    return values, True


def _leftover(piece: bytes) -> bytes:
    """What follows the last complete value of ``piece`` (an incomplete one)."""
    text = piece.decode("utf-8", "surrogateescape")
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r":
            pos += 1
        try:
            _, pos = _DECODER.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return text[pos:].encode("utf-8", "surrogateescape")


def not_records(values: list[Any]) -> int:
    """How many JSON values are no record: not an object, nor an object in an array
    (``"text"``, ``42``, ``[1, 2]``); Fluent Bit logs those as not a map."""
    count = 0
    for value in values:
        if isinstance(value, list):
            count += sum(1 for v in value if not isinstance(v, dict))
        elif not isinstance(value, dict):
            count += 1
    return count


class TcpInput(InputPlugin):
    """A TCP server: each client sends JSON objects or separated lines."""

    description = "TCP"
    options = ConfigMap.joined(
        ConfigMap(
            (
                Option("listen", "str", "0.0.0.0", "Address to listen on"),
                Option(
                    "port", "int", 5170, "TCP port (0 = any free port)", minimum=0, maximum=65535
                ),
                Option("format", "str", "json", "json or none", choices=("json", "none")),
                Option("separator", "str", "\\n", "Record separator with format none"),
                Option("chunk_size", "size", 32 * 1024, "Bytes read at once", minimum=1),
                Option(
                    "buffer_size", "size", 64 * 1024, "Largest incomplete record kept", minimum=1
                ),
                Option(
                    "source_address_key", "str", None, "Add the client's address under this key"
                ),
                Option("key", "str", "log", "Key of the line with format none"),
                Option(
                    "parser",
                    "str",
                    None,
                    "A [PARSER] applied to each separated piece (format none; a piece it does"
                    " not match is sent as {key: piece})",
                ),
                Option(
                    "workers",
                    "int",
                    1,
                    "Fluent Bit's worker threads",
                    no_effect="connections are served on the event loop",
                ),
            )
        ),
        STREAM_LIMIT_OPTIONS,
        SERVER_TLS_OPTIONS,
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.listen = opts.str("listen")
        self.port = opts.int("port")
        self.format = opts.str("format").lower()
        self.separator = unescape(opts.str("separator")) or b"\n"
        self.chunk_size = opts.int("chunk_size")
        self.buffer_size = max(opts.int("buffer_size"), self.chunk_size)
        self.source_key = opts.opt_str("source_address_key")
        self.key = opts.str("key") or "log"
        self.parser: Parser | None = lookup_parser(
            opts.opt_str("parser"), ctx.service, ctx_options=opts, section=f"[INPUT] {ctx.name}"
        )
        if self.parser is not None and self.format != "none":
            ctx.logger.warning(
                "'parser' reads separated pieces: format '%s' switched to 'none'"
                " (as Fluent Bit does)",
                self.format,
            )
            self.format = "none"
        self.ssl = tls_server(ctx)
        self.tag = ctx.tag or ctx.name
        self._packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors=SURROGATES)
        self._server: asyncio.Server | None = None
        self._clients = StreamClients.for_input(ctx)
        self.records = 0
        self.malformed = 0

    async def start(self) -> None:
        self._server, self.port = await start_tcp_server(
            self._serve,
            self.listen,
            self.port,
            limit=self.buffer_size,
            ssl=self.ssl,
            on_tls_failure=self._clients.tls_failed,
        )
        tls = " (TLS)" if self.ssl is not None else ""
        self.ctx.logger.info("listening on %s:%d%s", self.listen, self.port, tls)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._clients.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = f"tcp://{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        extra = [(self.source_key, address)] if self.source_key else []
        lines = LinePacker(self.key, extra)
        parsed = ParsedLines(self.parser, self.key, extra, None) if self.parser else None
        pending = b""
        async with self._clients.serving(writer, address) as session:
            while True:
                data = await session.read(reader, self.chunk_size, pending=bool(pending))
                buf = pending + data
                if self.format == "json":
                    values, bad, pending = split_json(buf) if data else split_json(buf + b"\n")
                    if len(pending) > self.buffer_size:
                        bad += 1
                        pending = b""
                    bad += not_records(values)
                    if bad:
                        self.malformed += bad
                        session.malformed(
                            bad,
                            "%s sent malformed JSON or JSON that is not an object;"
                            " skipping it (logged once per connection)",
                            address,
                        )
                    await self._emit_values(values, address)
                else:
                    pieces = buf.split(self.separator)
                    pending = pieces.pop()
                    if not data and pending:
                        pieces.append(pending)
                        pending = b""
                    while len(pending) > self.buffer_size:
                        pieces.append(pending[: self.buffer_size])
                        pending = pending[self.buffer_size :]
                    if pieces and parsed is not None:
                        now = entry_head(EventTime.from_float(self.ctx.clock.time()))[1:]
                        entries = (
                            parsed.entries(pieces, now)
                            if self.ctx.emit_entries is not None
                            and self.ctx.decodes is not None
                            and self.ctx.decodes(self.tag)
                            else None
                        )
                        if entries is not None and self.ctx.emit_entries is not None:
                            # filters or processors decode them anyway: handed over decoded
                            original = functools.partial(parsed.pack, pieces, now, None)
                            await self.ctx.emit_entries(self.tag, entries, len(pieces), original)
                        else:
                            data = parsed.pack(pieces, now, None)
                            await self.ctx.emit(self.tag, data, len(pieces))
                        self.records += len(pieces)
                    elif pieces:
                        await self.ctx.emit(
                            self.tag, lines.pack(pieces, now_ext(self.ctx.clock)), len(pieces)
                        )
                        self.records += len(pieces)
                if not data:
                    break

    async def _emit_values(self, values: list[Any], address: str) -> None:
        """Emit the objects among ``values`` (and in arrays of them); see :func:`not_records`."""
        records: list[dict[Any, Any]] = []
        for value in values:
            if isinstance(value, dict):
                records.append(value)
            elif isinstance(value, list):
                records.extend(v for v in value if isinstance(v, dict))
        if not records:
            return
        now = EventTime.from_float(self.ctx.clock.time())
        parts: list[bytes] = []
        for record in records:
            if self.source_key:
                record[self.source_key] = address
            try:
                parts.append(self._packer.pack([now, record]))
            except (ValueError, TypeError, OverflowError):
                self.malformed += 1  # e.g. nested deeper than msgpack allows
        if not parts:
            return
        await self.ctx.emit(self.tag, b"".join(parts), len(parts))
        self.records += len(parts)

    @property
    def connections(self) -> int:
        """Connections accepted since start."""
        return self._clients.connections

    def metrics(self) -> dict[str, Any]:
        return self._clients.stats.metrics()

    def status(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "records": self.records,
            "malformed": self.malformed,
            "connections": self._clients.connections,
            "clients": len(self._clients),
        }

    def __repr__(self) -> str:
        return f"<TcpInput {self.ctx.name} {self.listen}:{self.port} format={self.format}>"
