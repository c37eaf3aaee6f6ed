"""Forward codec throughput: records/s encoded and decoded per mode.

Run: ``python benchmarks/forward_codec.py`` (about 10 s).  Sans-IO only: no
sockets, so the numbers are the codec's own cost.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import msgpack

from relaybit.codec.forward import (
    NEED_DATA,
    CompressedPackedForward,
    Event,
    Forward,
    ForwardConnection,
    Message,
    PackedForward,
    Role,
)
from relaybit.codec.forward.connection import entry
from relaybit.codec.msgpack import EventTime, default

BATCH = 1000
BUDGET = 0.7  # seconds per measurement


def record(i: int) -> dict[str, object]:
    return {
        "log": f"GET /api/v1/items/{i} HTTP/1.1 200 {i * 7 % 5000}",
        "level": "info",
        "host": "web-1",
        "pid": 4242,
        "n": i,
    }


T = EventTime(1700000000, 123)
ENTRIES = [entry(T, record(i)) for i in range(BATCH)]
PACKED = b"".join(ENTRIES)
META_PACKED = b"".join(
    msgpack.packb([[T, {}], record(i)], default=default, use_bin_type=True) for i in range(BATCH)
)


def rate(fn: Callable[[], int]) -> float:
    """Records per second of ``fn`` (returns how many records it handled)."""
    fn()  # warm up
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < BUDGET:
        done += fn()
    return done / elapsed


def decode_all(data: bytes) -> int:
    conn = ForwardConnection(Role.SERVER, buffer_max_size=64 * 1024 * 1024)
    conn.receive_data(data)
    records = 0
    while (ev := conn.next_event()) is not NEED_DATA:
        assert isinstance(ev, Message | Forward | PackedForward | CompressedPackedForward)
        records += ev.records
    return records


def encoder(events: list[Event]) -> Callable[[], int]:
    def run() -> int:
        conn = ForwardConnection(Role.CLIENT)
        for ev in events:
            conn.send_parts(ev)
        return BATCH

    return run


def main() -> None:
    client = ForwardConnection(Role.CLIENT)
    modes: dict[str, tuple[list[Event], bytes]] = {}
    messages: list[Event] = [Message("app", e, 1) for e in ENTRIES]
    modes["Message"] = (messages, b"".join(client.send(m) for m in messages))
    fwd: list[Event] = [Forward("app", PACKED, BATCH)]
    modes["Forward"] = (fwd, client.send(fwd[0]))
    packed: list[Event] = [PackedForward("app", PACKED, BATCH, send_size=True)]
    modes["PackedForward"] = (packed, client.send(packed[0]))
    gz: list[Event] = [CompressedPackedForward("app", PACKED, BATCH)]
    modes["CompressedPackedForward"] = (gz, client.send(gz[0]))
    meta = msgpack.packb(["app", META_PACKED], use_bin_type=True)

    rows: list[tuple[str, str, str]] = []
    for name, (events, wire) in modes.items():
        enc = rate(encoder(events))
        dec = rate(functools.partial(decode_all, wire))
        rows.append((name, f"{enc:,.0f}", f"{dec:,.0f}"))
    meta_rate = rate(functools.partial(decode_all, meta))
    rows.append(("PackedForward [[t, meta], r]", "-", f"{meta_rate:,.0f}"))

    def relay() -> int:
        server = ForwardConnection(Role.SERVER)
        out = ForwardConnection(Role.CLIENT)
        server.receive_data(modes["PackedForward"][1])
        ev = server.next_event()
        assert isinstance(ev, PackedForward)
        out.send_parts(PackedForward(ev.tag, ev.entries, ev.records))
        return ev.records

    rows.append(("packed pass-through (in+out)", "-", f"{rate(relay):,.0f}"))

    size = len(PACKED) / BATCH
    print(f"Forward codec, {BATCH} records per frame, ~{size:.0f} bytes per record")
    print(f"{'mode':<32} {'encode rec/s':>16} {'decode rec/s':>16}")
    print("-" * 66)
    for name, enc_s, dec_s in rows:
        print(f"{name:<32} {enc_s:>16} {dec_s:>16}")


if __name__ == "__main__":
    main()
