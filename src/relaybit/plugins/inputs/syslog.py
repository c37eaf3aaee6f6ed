"""in_syslog: syslog messages over UDP, TCP or a Unix socket, parsed by a parser.

``Mode`` is ``udp``, ``tcp``, ``unix_udp`` (default, as Fluent Bit) or
``unix_tcp``; ``Listen``/``Port`` (5140) for the network modes, ``Path`` and
``Unix_Perm`` (0644) for the Unix ones.  ``Parser`` defaults to
``syslog-rfc5424`` for udp/tcp and ``syslog-rfc3164-local`` for the Unix
modes, as in Fluent Bit.

Framing on stream sockets (RFC 6587): a frame that starts with a digit is
octet-counted (``LEN SP MSG``); otherwise a message ends at LF or NUL
(Python's ``SysLogHandler`` ends its messages with NUL).  A datagram is one
message (a trailing LF/NUL is removed).  Datagrams are read into a bounded
queue and emitted in batches (``plugins/inputs/datagrams.py``): while the
input is paused the queue holds at most 1,000 datagrams (4 MB), then the
socket is not read until the queue drains; the kernel then drops what the
socket's receive buffer cannot hold, counted in ``dropped_datagrams`` (UDP).
A message the parser does not match
is counted (``malformed``) and skipped, logged once per connection (per
socket for datagrams); the connection stays open.  ``Buffer_Max_Size`` bounds
one message: a longer one is counted as malformed and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.text import SURROGATES
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers import BUILTIN_PARSERS, Parser
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.datagrams import Datagram, DatagramReader
from relaybit.plugins.inputs.lines import apply_parser
from relaybit.plugins.inputs.stream_clients import (
    SERVER_TLS_OPTIONS,
    STREAM_LIMIT_OPTIONS,
    StreamClients,
    start_tcp_server,
    tls_server,
)

MODES = ("udp", "tcp", "unix_udp", "unix_tcp")


class SyslogFramer:
    """Splits a byte stream into syslog messages (octet counting or LF/NUL). Pure."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.buf = b""
        self.oversized = 0
        self._skip = 0  #: bytes of an oversized octet-counted frame still to discard
        self._discarding = False  #: inside an oversized LF/NUL-terminated message

    def feed(self, data: bytes) -> list[bytes]:
        """The complete messages after ``data``."""
        self.buf += data
        out: list[bytes] = []
        while self.buf:
            if self._skip:
                cut = min(self._skip, len(self.buf))
                self.buf = self.buf[cut:]
                self._skip -= cut
                continue
            first = self.buf[:1]
            if self._discarding:
                first = b"<"  # the rest of an oversized line: find its terminator
            elif first in (b"\n", b"\0", b"\r", b" "):
                self.buf = self.buf[1:]
                continue
            if first.isdigit():
                space = self.buf.find(b" ", 0, 12)
                if space < 0 and len(self.buf) < 12 and self.buf.isdigit():
                    break  # the length is still arriving
                if space > 0 and self.buf[:space].isdigit():
                    length = int(self.buf[:space])
                    if length > self.max_size:
                        self.oversized += 1
                        self.buf = self.buf[space + 1 :]
                        self._skip = length
                        continue
                    end = space + 1 + length
                    if len(self.buf) < end:
                        break
                    out.append(self.buf[space + 1 : end])
                    self.buf = self.buf[end:]
                    continue
            size = len(self.buf)
            out.extend(self._line_frames())
            if len(self.buf) == size:
                break  # no terminator yet
        return out

    def _line_frames(self) -> list[bytes]:
        """One LF/NUL-terminated message from the buffer (or none yet)."""
        ends = [i for i in (self.buf.find(b"\n"), self.buf.find(b"\0")) if i >= 0]
        if not ends:
            if len(self.buf) > self.max_size:
                if not self._discarding:
                    self.oversized += 1
                self._discarding = True  # until its terminator
                self.buf = b""
            return []
        end = min(ends)
        line, self.buf = self.buf[:end], self.buf[end + 1 :]
        if self._discarding:
            self._discarding = False
            return []
        if len(line) > self.max_size:
            self.oversized += 1
            return []
        return [line]

    @property
    def pending(self) -> bool:
        """A message is incomplete: some of its bytes came (or are being skipped)."""
        return bool(self.buf or self._skip or self._discarding)

    def finish(self) -> list[bytes]:
        """What is left when the stream ends (a last message without terminator)."""
        rest, self.buf = self.buf.strip(b"\r\n\0 "), b""
        if not rest or self._skip or self._discarding:
            return []
        return [rest] if len(rest) <= self.max_size else []

    def __repr__(self) -> str:
        return f"<SyslogFramer pending={len(self.buf)} oversized={self.oversized}>"


class SyslogInput(InputPlugin):
    """A syslog server (UDP, TCP or Unix socket) parsing each message."""

    description = "Syslog over UDP, TCP or Unix sockets"
    options = ConfigMap.joined(
        ConfigMap(
            (
                Option("mode", "str", "unix_udp", "udp, tcp, unix_udp or unix_tcp", choices=MODES),
                Option("listen", "str", "0.0.0.0", "Address to listen on (udp/tcp)"),
                Option(
                    "port",
                    "int",
                    5140,
                    "Port (udp/tcp; 0 = any free port)",
                    minimum=0,
                    maximum=65535,
                ),
                Option("path", "str", None, "Unix socket path (unix_udp/unix_tcp)"),
                Option("unix_perm", "str", "0644", "Unix socket permissions (octal)"),
                Option(
                    "parser",
                    "str",
                    None,
                    "Parser of each message (syslog-rfc5424 for udp/tcp, syslog-rfc3164-local for unix)",
                ),
                Option("buffer_chunk_size", "size", 32000, "Bytes read at once", minimum=1),
                Option("buffer_max_size", "size", 0, "Largest message (0: buffer_chunk_size)"),
                Option(
                    "receive_buffer_size", "size", 0, "SO_RCVBUF of datagram sockets (0: system)"
                ),
                Option(
                    "source_address_key", "str", None, "Add the sender's address under this key"
                ),
                Option(
                    "raw_message_key",
                    "str",
                    None,
                    "Add the message as received (bytes) under this key",
                ),
                Option(
                    "format",
                    "str",
                    "newline",
                    "TCP framing: newline or octet_counting (RFC 6587); relaybit reads both"
                    " whatever is set (each frame says which it is)",
                    choices=("newline", "octet_counting", "octet"),
                ),
            )
        ),
        STREAM_LIMIT_OPTIONS,
        SERVER_TLS_OPTIONS,
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[INPUT] {ctx.name}"
        self.mode = opts.str("mode").lower()
        self.listen = opts.str("listen")
        self.port = opts.int("port")
        self.path = opts.opt_str("path")
        if self.mode.startswith("unix") and not self.path:
            raise ConfigError(
                f"mode {self.mode} needs 'path': the Unix socket file",
                opts.origin("mode"),
                section=section,
                key="path",
            )
        perm = opts.str("unix_perm")
        try:
            self.unix_perm = int(perm, 8)
        except ValueError:
            raise ConfigError(
                f"expected octal permissions such as 0644, got {perm!r}",
                opts.origin("unix_perm"),
                section=section,
                key="unix_perm",
            ) from None
        default_parser = (
            "syslog-rfc3164-local" if self.mode.startswith("unix") else "syslog-rfc5424"
        )
        parser_name = opts.opt_str("parser") or default_parser
        parsers: Mapping[str, Parser] = ctx.service.get("parsers") or BUILTIN_PARSERS
        parser = parsers.get(parser_name)
        if parser is None:
            raise ConfigError(
                f"unknown parser '{parser_name}' (defined parsers: {', '.join(sorted(parsers))})",
                opts.origin("parser"),
                section=section,
                key="parser",
            )
        self.parser = parser
        self.chunk_size = opts.int("buffer_chunk_size")
        self.max_size = opts.int("buffer_max_size") or self.chunk_size
        self.receive_buffer_size = opts.int("receive_buffer_size")
        self.source_key = opts.opt_str("source_address_key")
        self.raw_key = opts.opt_str("raw_message_key")
        self.ssl = tls_server(ctx)
        if self.ssl is not None and self.mode != "tcp":
            raise ConfigError(
                f"tls needs mode tcp (mode is {self.mode})",
                opts.origin("tls"),
                section=section,
                key="tls",
            )
        self.tag = ctx.tag or ctx.name
        self._packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors=SURROGATES)
        self._server: asyncio.Server | None = None
        self._datagrams: DatagramReader | None = None
        self._clients = StreamClients.for_input(ctx)
        self._warned_datagram = False
        self.records = 0
        self.malformed = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.mode in ("udp", "unix_udp"):
            self._datagrams = DatagramReader(
                self._datagram_socket(),
                self.on_datagrams,
                self.ctx.logger,
                max_size=self.max_size,
            )
            self._datagrams.start()
        elif self.mode == "tcp":
            self._server, self.port = await start_tcp_server(
                self._serve,
                self.listen,
                self.port,
                limit=self.chunk_size,
                ssl=self.ssl,
                on_tls_failure=self._clients.tls_failed,
            )
        else:
            assert self.path is not None
            self._unlink_stale()
            self._server = await asyncio.start_unix_server(
                self._serve, self.path, limit=self.chunk_size
            )
            os.chmod(self.path, self.unix_perm)
        where = self.path if self.mode.startswith("unix") else f"{self.listen}:{self.port}"
        tls = ", TLS" if self.ssl is not None else ""
        self.ctx.logger.info("listening on %s (%s%s)", where, self.mode, tls)

    def _unlink_stale(self) -> None:
        assert self.path is not None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _datagram_socket(self) -> socket.socket:
        if self.mode == "udp":
            family = socket.getaddrinfo(self.listen, None, type=socket.SOCK_DGRAM)[0][0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            address: Any = (self.listen, self.port)
        else:
            assert self.path is not None
            self._unlink_stale()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            address = self.path
        try:
            if self.receive_buffer_size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer_size)
            sock.bind(address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        if self.mode == "udp":
            self.port = sock.getsockname()[1]
        else:
            os.chmod(address, self.unix_perm)
        return sock

    async def stop(self) -> None:
        if self._datagrams is not None:
            await self._datagrams.stop()  # what it holds is emitted first
        if self._server is not None:
            self._server.close()
        await self._clients.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self.mode.startswith("unix") and self.path:
            self._unlink_stale()

    # --- messages ------------------------------------------------------------------------

    def pack(self, messages: list[bytes], address: str | None) -> tuple[bytes, int, int]:
        """Parsed messages as msgpack entries: (data, records, malformed)."""
        parts: list[bytes] = []
        bad = 0
        now: EventTime | None = None
        for raw in messages:
            text = raw.rstrip(b"\r\n\0").decode("utf-8", "surrogateescape")
            parsed = apply_parser(self.parser, text) if text else None
            if parsed is None:
                bad += 1
                continue
            when, record = parsed
            if when is None:
                now = now or EventTime.from_float(self.ctx.clock.time())
                when = now
            if self.raw_key:
                record[self.raw_key] = raw.rstrip(b"\r\n\0")
            if self.source_key and address is not None:
                record[self.source_key] = address
            try:
                parts.append(self._packer.pack([when, record]))
            except (ValueError, TypeError, OverflowError):
                bad += 1
        return b"".join(parts), len(parts), bad

    def _count_bad(self, bad: int, address: str | None, warned: bool) -> bool:
        if not bad:
            return warned
        self.malformed += bad
        if not warned:
            self.ctx.logger.warning(
                "%s sent a message that parser '%s' does not match (or too long); skipped"
                " (logged once per connection, counted in 'malformed')",
                address or self.mode,
                self.parser.name,
            )
        return True

    async def on_datagrams(self, batch: list[Datagram]) -> None:
        """Datagrams read in turn (one message each), emitted together."""
        parts: list[bytes] = []
        total = 0
        for data, addr in batch:
            address = f"udp://{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else None
            if len(data) > self.max_size:
                self._warned_datagram = self._count_bad(1, address, self._warned_datagram)
                continue
            packed, records, bad = self.pack([data], address)
            self._warned_datagram = self._count_bad(bad, address, self._warned_datagram)
            if records:
                parts.append(packed)
                total += records
        if total:
            await self._emit(b"".join(parts), total)

    async def _emit(self, data: bytes, records: int) -> None:
        try:
            await self.ctx.emit(self.tag, data, records)
        except Exception as exc:  # a datagram has no one to answer: count it, log once
            self.restarts.count += 1
            self.restarts.last_error = f"{type(exc).__name__}: {exc}"
            level = logging.ERROR if self.restarts.count == 1 else logging.DEBUG
            self.ctx.logger.log(
                level,
                "a datagram's records were not stored (%s); the input goes on"
                " (further errors at debug, counted in 'restarts')",
                self.restarts.last_error,
                exc_info=exc if level == logging.DEBUG else None,
            )
            return
        self.records += records

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = f"tcp://{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and peer else None
        framer = SyslogFramer(self.max_size)
        async with self._clients.serving(writer, address) as session:
            while True:
                data = await session.read(reader, self.chunk_size, pending=framer.pending)
                before = framer.oversized
                messages = framer.feed(data) if data else framer.finish()
                packed, records, bad = self.pack(messages, address)
                bad += framer.oversized - before
                if bad:
                    self.malformed += bad
                    session.malformed(
                        bad,
                        "%s sent a message that parser '%s' does not match (or too long);"
                        " skipped (logged once per connection, counted in 'malformed')",
                        address or self.mode,
                        self.parser.name,
                    )
                if records:
                    await self._emit(packed, records)
                if not data:
                    break

    @property
    def connections(self) -> int:
        """Connections accepted since start."""
        return self._clients.connections

    def metrics(self) -> dict[str, Any]:
        if self._datagrams is not None:
            dropped = self._datagrams.dropped
            return {
                "held_datagrams": self._datagrams.held,
                "reading_stops": self._datagrams.stops,
                **({} if dropped is None else {"dropped_datagrams": dropped}),
            }
        if self.mode in ("udp", "unix_udp"):
            return {}
        return self._clients.stats.metrics()

    def status(self) -> dict[str, Any]:
        datagrams = {} if self._datagrams is None else self._datagrams.status()
        return {
            "mode": self.mode,
            "port": self.port,
            "records": self.records,
            "malformed": self.malformed,
            "connections": self._clients.connections,
            **datagrams,
        }

    def __repr__(self) -> str:
        where = self.path if self.mode.startswith("unix") else f"{self.listen}:{self.port}"
        return f"<SyslogInput {self.ctx.name} {self.mode} {where} parser={self.parser.name}>"
