"""An encoder process: chunks in, request bodies out, beside the agent's event loop.

The agent's own process reads, buffers, routes and sends; turning a chunk into
a JSON body (the es output's bulk NDJSON, the http output's json formats) is
most of the CPU a touched record costs, and it needs nothing of the agent's
state.  :mod:`relaybit.plugins.outputs.encoder_pool` starts this module as a
separate process (``python -m relaybit.plugins.outputs.encoder_worker``) so
that work runs on another core.

The wire between the two (this module is its only definition):

- two shared memory regions (file descriptors, ``mmap``): the agent writes a
  chunk into *in*, the worker writes the body into *out*;
- a control pipe, agent to worker: a :data:`REQUEST` header, then for
  :data:`REGISTER` a pickled zero-argument factory of an encoder (an object
  with :meth:`ChunkEncoder.encode_chunk`), for :data:`ENCODE` the tag;
- a reply pipe, worker to agent: one :data:`REPLY` per request that asks for
  one (:data:`HELLO` once at start, then one per :data:`ENCODE`).

One request is in flight per worker.  The worker exits when the control pipe
closes (the agent stopped or died).  An encoder that raises is answered with
:data:`FAILED` and the error's text: the agent then encodes that chunk itself
and meets the same error where it has always handled it.
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import signal
import struct
import sys
from typing import Protocol

#: kind (B), encoder id (I), length (I), count (i), now (d), tag length (H)
REQUEST = struct.Struct(">BIIidH")
#: status (B), length (I), entries (I)
REPLY = struct.Struct(">BII")

REGISTER = 1  #: a pickled encoder factory of ``length`` bytes follows on the pipe
ENCODE = 2  #: a chunk of ``length`` bytes is in the *in* region; the tag follows

OK = 0  #: the body (``length`` bytes) is in the *out* region; ``entries`` were encoded
FAILED = 1  #: the encoder raised; its text (``length`` bytes) is in the *out* region
TOO_BIG = 2  #: the body does not fit the *out* region
HELLO = 3  #: the worker is up and reads requests


class ChunkEncoder(Protocol):
    """What a registered factory builds: one chunk to one body."""

    def encode_chunk(self, data: bytes, count: int, tag: str, now: float) -> tuple[bytes, int]:
        """``(body, entries encoded)`` of a chunk said to hold ``count`` entries."""
        ...


def _read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``; None at end of file."""
    parts = []
    while size:
        data = os.read(fd, size)
        if not data:
            return None
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the (blocking) descriptor ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(ctrl: int, reply: int, region_in: mmap.mmap, region_out: mmap.mmap) -> None:
    """Answer requests until the control pipe closes."""
    encoders: dict[int, ChunkEncoder] = {}
    capacity = len(region_out)
    write_all(reply, REPLY.pack(HELLO, 0, 0))
    while True:
        head = _read_exact(ctrl, REQUEST.size)
        if head is None:
            return
        kind, key, length, count, now, tag_length = REQUEST.unpack(head)
        payload = _read_exact(ctrl, length if kind == REGISTER else tag_length)
        if payload is None:
            return
        if kind == REGISTER:
            encoders[key] = pickle.loads(payload)()  # from the agent that started us
            continue
        try:
            body, entries = encoders[key].encode_chunk(
                region_in[:length], count, payload.decode("utf-8", "surrogateescape"), now
            )
        except Exception as exc:  # every failure is answered, none ends the worker
            text = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4096]
            region_out[: len(text)] = text
            write_all(reply, REPLY.pack(FAILED, len(text), 0))
            continue
        if len(body) > capacity:
            write_all(reply, REPLY.pack(TOO_BIG, len(body), entries))
            continue
        region_out[: len(body)] = body
        write_all(reply, REPLY.pack(OK, len(body), entries))


def main(argv: list[str]) -> int:
    """``ctrl reply in out size``: the descriptors the agent passed, and the regions' size."""
    ctrl, reply, fd_in, fd_out, size = (int(a) for a in argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the agent; it stops us
    gc.disable()  # records hold no cycles; this process keeps nothing between chunks
    region_in = mmap.mmap(fd_in, size)
    region_out = mmap.mmap(fd_out, size)
    try:
        serve(ctrl, reply, region_in, region_out)
    except BrokenPipeError:  # the agent went away
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
