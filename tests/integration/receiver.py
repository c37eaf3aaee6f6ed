"""A real Forward receiver process for the end-to-end and fault tests.

Built on :class:`relaybit.net.forward_server.ForwardServer`.  Every record it
receives is appended to ``--out`` as one JSON line::

    {"node": NAME, "msg": N, "tag": TAG, "record": {...}}

``msg`` numbers the Forward messages (one per agent flush) of this process, so
tests can count flushes per node.  The lines are written with one ``os.write``
on an ``O_APPEND`` descriptor *before* the handler returns, and the server
writes the ack only after that: an acked record is in the kernel's page cache
and survives ``kill -9`` of the receiver.

Usage::

    python receiver.py --name node-1 --out node-1.jsonl [--port 0] [--port-file F]
                       [--tls-cert C --tls-key K] [--shared-key S]

The bound port is printed on stdout (``PORT <n>``) and, with ``--port-file``,
written atomically to that file.  SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from pathlib import Path

import orjson

from relaybit.codec.msgpack import iter_entries
from relaybit.net.forward_server import ForwardServer


class Receiver:
    """Appends every received record to a file, then lets the server ack."""

    def __init__(self, name: str, out: Path) -> None:
        self.name = name
        self.fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.messages = 0

    async def on_entries(self, tag: str, entries: bytes, records: int) -> None:
        self.messages += 1
        lines = [
            orjson.dumps(
                {"node": self.name, "msg": self.messages, "tag": tag, "record": record},
                default=str,
            )
            for _, record in iter_entries(entries)
        ]
        data = b"\n".join(lines) + b"\n"
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def __repr__(self) -> str:
        return f"<Receiver {self.name} messages={self.messages}>"


def _tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(args: argparse.Namespace) -> None:
    receiver = Receiver(args.name, Path(args.out))
    server = ForwardServer(
        receiver.on_entries,
        host="127.0.0.1",
        port=args.port,
        ssl=_tls(args.tls_cert, args.tls_key),
        shared_key=args.shared_key,
        self_hostname=args.name,
        udp_heartbeat=False,
        name=args.name,
    )
    await server.start()
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)
    print(f"PORT {server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    os.close(receiver.fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--shared-key")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
