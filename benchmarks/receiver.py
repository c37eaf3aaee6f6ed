"""A fast counting Forward receiver, run as its own process by the benchmark harness.

    python benchmarks/receiver.py --stats FILE [--port 0] [--tls-cert C --tls-key K]

Prints ``PORT <n>`` on its first stdout line once listening.  Counts records of
every Forward mode without decoding them (PackedForward entries are walked with
``Unpacker.skip()``; CompressedPackedForward is gunzipped first), answers
``{"ack": id}`` when the option carries ``chunk``, and writes
``{"records", "bytes", "messages", "first", "last"}`` (wall times) to the stats
file whenever the counts change (atomically, every 50 ms at most).  Stops on
SIGTERM/SIGINT after writing the final stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import time
import zlib
from typing import Any

import msgpack

STATS_INTERVAL = 0.05


def count_packed(data: bytes) -> int:
    """Number of msgpack values packed back to back in ``data``."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    n = 0
    try:
        while True:
            unpacker.skip()
            n += 1
    except msgpack.OutOfData:
        return n


def gunzip_all(data: bytes) -> bytes:
    """Decompress every concatenated gzip member of ``data``."""
    parts = []
    while data:
        d = zlib.decompressobj(wbits=31)
        parts.append(d.decompress(data))
        parts.append(d.flush())
        data = d.unused_data
    return b"".join(parts)


class Counter:
    """Totals over every connection of this receiver."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0
        self.messages = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(self, records: int, size: int) -> None:
        now = time.time()
        if self.first is None:
            self.first = now
        self.last = now
        self.records += records
        self.bytes += size
        self.messages += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "bytes": self.bytes,
            "messages": self.messages,
            "first": self.first,
            "last": self.last,
        }

    def __repr__(self) -> str:
        return f"<Counter records={self.records} messages={self.messages}>"


class CountingProtocol(asyncio.Protocol):
    """One Forward connection: unpack top-level messages, count, ack."""

    def __init__(self, counter: Counter, ack: bool) -> None:
        self.counter = counter
        self.ack = ack
        self.unpacker = msgpack.Unpacker(raw=True, use_list=False, max_buffer_size=256 << 20)
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.unpacker.feed(data)
        for message in self.unpacker:
            if isinstance(message, tuple) and len(message) >= 2:
                self.handle(message)

    def handle(self, message: tuple[Any, ...]) -> None:
        body = message[1]
        option: Any = None
        if isinstance(body, bytes):  # PackedForward / CompressedPackedForward
            option = message[2] if len(message) > 2 else None
            size = len(body)
            if isinstance(option, dict) and option.get(b"compressed") == b"gzip":
                body = gunzip_all(body)
            records = count_packed(body)
        elif isinstance(body, tuple):  # Forward
            option = message[2] if len(message) > 2 else None
            records, size = len(body), 0
        else:  # Message: [tag, time, record, option?]
            option = message[3] if len(message) > 3 else None
            records, size = 1, 0
        self.counter.add(records, size)
        if self.ack and isinstance(option, dict) and b"chunk" in option and self.transport:
            self.transport.write(msgpack.packb({b"ack": option[b"chunk"]}, use_bin_type=False))

    def __repr__(self) -> str:
        return f"<CountingProtocol {self.counter!r}>"


def write_stats(path: str, counter: Counter) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(counter.snapshot(), f)
    os.replace(tmp, path)


async def serve(args: argparse.Namespace) -> None:
    counter = Counter()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: CountingProtocol(counter, not args.no_ack),
        args.host,
        args.port,
        ssl=context,
        backlog=256,
    )
    await count_until_stopped(server, counter, args.stats)


async def count_until_stopped(server: asyncio.Server, counter: Counter, stats: str) -> None:
    """Print the bound port, write the counts to ``stats`` as they change, until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    port = server.sockets[0].getsockname()[1]
    write_stats(stats, counter)
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    written = -1
    while not stop.is_set():
        if counter.messages != written:
            written = counter.messages
            write_stats(stats, counter)
        try:
            await asyncio.wait_for(stop.wait(), STATS_INTERVAL)
        except TimeoutError:
            pass
    server.close()
    write_stats(stats, counter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats", required=True, help="file the counts are written to")
    parser.add_argument("--tls-cert", help="PEM certificate chain (enables TLS)")
    parser.add_argument("--tls-key", help="PEM private key")
    parser.add_argument("--no-ack", action="store_true", help="never answer acks")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
