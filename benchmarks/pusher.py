"""A Forward client process for the relay benchmark: pushes PackedForward into the agent.

    python benchmarks/pusher.py --port P --records N --workload FILE [--batch 1000]

Connects to 127.0.0.1:P (retrying until the agent listens, up to 30 s), prints
``START <wall time>`` when the first byte goes out, sends N records as
PackedForward messages of ``--batch`` records built from the workload's first
lines (packed once, sent repeatedly), then closes.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from pathlib import Path

import msgpack


def event_time(t: float) -> msgpack.ExtType:
    sec = int(t)
    return msgpack.ExtType(0, struct.pack(">II", sec, int((t - sec) * 1e9)))


def packed_entries(lines: list[bytes]) -> bytes:
    packer = msgpack.Packer()
    now = event_time(time.time())
    return b"".join(packer.pack([now, {"log": line.rstrip(b"\n").decode()}]) for line in lines)


def message(tag: str, entries: bytes, count: int) -> bytes:
    data: bytes = msgpack.packb([tag, entries, {"size": count}], use_bin_type=True)
    return data


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--tag", default="bench")
    args = parser.parse_args(argv)
    with Path(args.workload).open("rb") as f:
        lines = [line for _, line in zip(range(args.batch), f, strict=False)]
    full = message(args.tag, packed_entries(lines), len(lines))
    sock = connect(args.port, time.monotonic() + 30)
    sock.settimeout(None)
    print(f"START {time.time()}", flush=True)
    sent = 0
    with sock:
        while sent < args.records:
            n = min(len(lines), args.records - sent)
            sock.sendall(
                full if n == len(lines) else message(args.tag, packed_entries(lines[:n]), n)
            )
            sent += n
        sock.shutdown(socket.SHUT_WR)
        try:  # wait for the agent to close, so nothing is cut off in flight
            sock.settimeout(30)
            while sock.recv(65536):
                pass
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
