"""A fast counting HTTP receiver (Elasticsearch Bulk API or JSON lines), run by the harness.

    python benchmarks/http_receiver.py --stats FILE --mode es|lines [--port 0] [--status 200]

Prints ``PORT <n>`` on its first stdout line once listening.  A real HTTP/1.1
server on raw asyncio (keep-alive, ``Content-Length`` or chunked bodies,
``Content-Encoding: gzip``, ``Expect: 100-continue``):

- ``--mode es``: ``POST .../_bulk`` bodies are NDJSON action/document pairs;
  counts the documents (lines / 2) and answers as Elasticsearch does
  (``{"took":..,"errors":false,"items":[{"create":{"_index":..,"_id":..,
  "_version":1,"result":"created","_shards":{..},"_seq_no":..,"_primary_term":1,
  "status":201}}, ...]}``, one item per action, the action's own operation and
  index); ``GET /`` answers the cluster info a client may ask for first;
- ``--mode lines``: every non-empty body line is a record (``json_lines``); the
  answer is ``--status`` (200 or 201) with an empty body.

Writes ``{"records", "bytes", "messages", "first", "last"}`` (wall times) to
the stats file whenever the counts change (every 50 ms at most), as
benchmarks/receiver.py does.  Stops on SIGTERM/SIGINT after writing the stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import zlib
from typing import Any

from receiver import Counter, count_until_stopped, gunzip_all

_INFO = json.dumps(
    {
        "name": "bench",
        "cluster_name": "bench",
        "version": {"number": "8.13.0", "build_flavor": "default"},
        "tagline": "You Know, for Search",
    }
).encode()
_REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request", 404: b"Not Found"}


def bulk_response(body: bytes, seq: int) -> tuple[int, bytes]:
    """(documents, Elasticsearch's answer) for a bulk NDJSON body."""
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    docs = lines // 2
    op, index = "create", "bench"
    first = body[: body.find(b"\n")] if b"\n" in body else body
    try:
        action = json.loads(first)
        op = next(iter(action))
        index = str(action[op].get("_index", index))
    except (ValueError, StopIteration, AttributeError, TypeError):
        pass
    item = (
        f'{{"{op}":{{"_index":{json.dumps(index)},"_id":"bench","_version":1,'
        '"result":"created","_shards":{"total":1,"successful":1,"failed":0},'
        f'"_seq_no":{seq},"_primary_term":1,"status":201}}}}'
    ).encode()
    answer = b'{"took":1,"errors":false,"items":[' + b",".join([item] * docs) + b"]}"
    return docs, answer


class HttpCounting(asyncio.Protocol):
    """One HTTP/1.1 connection: parse requests, count records, answer."""

    def __init__(self, counter: Counter, mode: str, status: int) -> None:
        self.counter = counter
        self.mode = mode
        self.status = status
        self.buf = bytearray()
        self.transport: Any = None
        self.head: tuple[str, str, dict[str, str]] | None = None
        self.seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self._one():
            pass

    def _one(self) -> bool:
        """Handle one complete request from the buffer; False when more bytes are needed."""
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            method, path, *_ = [*lines[0].split(" "), "", ""]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.head = (method, path, headers)
            if headers.get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        method, path, headers = self.head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
            if body is None:
                return False
        else:
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < length:
                return False
            body = bytes(self.buf[:length])
            del self.buf[:length]
        self.head = None
        self._answer(method, path, headers, body)
        return True

    def _chunked(self) -> bytes | None:
        """The whole chunked body when it is all in the buffer (consumed), else None."""
        pos, parts = 0, []
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end < 0:
                return None
            size = int(bytes(self.buf[pos:end]).split(b";")[0], 16)
            if size == 0:  # the last chunk, trailers, then an empty line
                stop = self.buf.find(b"\r\n\r\n", end)
                if stop < 0:
                    return None
                del self.buf[: stop + 4]
                return b"".join(parts)
            if len(self.buf) < end + 2 + size + 2:
                return None
            parts.append(bytes(self.buf[end + 2 : end + 2 + size]))
            pos = end + 2 + size + 2

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        size = len(body)
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gunzip_all(body)
        elif headers.get("content-encoding", "").lower() == "deflate":
            body = zlib.decompress(body)
        if method in ("GET", "HEAD") and self.mode == "es":
            self._send(200, _INFO if method == "GET" else b"", "application/json")
            return
        if method not in ("POST", "PUT"):
            self._send(404, b"", "text/plain")
            return
        if self.mode == "es":
            self.seq += 1
            records, answer = bulk_response(body, self.seq)
            self.counter.add(records, size)
            self._send(200, answer, "application/json")
            return
        records = sum(1 for line in body.split(b"\n") if line.strip())
        self.counter.add(records, size)
        self._send(self.status, b"", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (status, _REASONS.get(status, b"OK"), content_type.encode(), len(body))
            + body
        )

    def __repr__(self) -> str:
        return f"<HttpCounting mode={self.mode} {self.counter!r}>"


async def serve(args: argparse.Namespace) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpCounting(counter, args.mode, args.status), args.host, args.port, backlog=256
    )
    await count_until_stopped(server, counter, args.stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats", required=True, help="file the counts are written to")
    parser.add_argument("--mode", choices=("es", "lines"), default="lines")
    parser.add_argument("--status", type=int, default=200, choices=(200, 201))
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
