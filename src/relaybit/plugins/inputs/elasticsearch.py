"""The ``elasticsearch`` input (Fluent Bit's in_elasticsearch): a Bulk API endpoint.

Elasticsearch clients and shippers (the official clients, Beats, Logstash,
Fluent Bit's es output) send ``POST /_bulk`` or ``POST /<index>/_bulk`` (the
official Python client v8 uses ``PUT``, which Fluent Bit answers with ``{}``) with
NDJSON action/source pairs.  ``index`` and ``create`` actions become records:
the source's keys plus ``meta_key`` (``@meta``) holding the action line.  As in
Fluent Bit, ``update`` is answered 403 and ``delete`` (no source line) 404:
relaybit is not a document store.  The bulk response is sent after the records
are stored.  Every response carries ``X-Elastic-Product: Elasticsearch``, which
the official clients (v8) require.
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from relaybit.codec.jsonvalue import loads as json_loads
from relaybit.config.schema import ConfigMap, Option
from relaybit.net.http_server import Reply, Request
from relaybit.plugins.base import InputContext
from relaybit.plugins.inputs.http import (
    SERVER_OPTIONS,
    BodyTooLarge,
    HttpServerInput,
    decode_body,
    emit_records,
    group_by_tag,
)

PRODUCT_HEADERS = [("X-Elastic-Product", "Elasticsearch")]
CLUSTER_NAME = "relaybit"

#: Bulk actions and the status answered for them (those with a source line first).
_STORED = {"index": (201, "created"), "create": (201, "created")}
_REFUSED = {"update": (403, "forbidden"), "delete": (404, "not_found")}


@dataclass(slots=True)
class BulkResult:
    """The records of one bulk request and the per-item response entries."""

    records: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> bool:
        return any(next(iter(i.values())).get("status", 200) >= 300 for i in self.items)


def parse_bulk(body: bytes, *, default_index: str | None, meta_key: str) -> BulkResult:
    """Read NDJSON action/source pairs; ValueError (with the line) on bad input.

    Pure: nothing is emitted, so a bad line rejects the whole request and
    nothing of it is stored twice when the client sends it again.
    """
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    result = BulkResult()
    seq = itertools.count()
    pos = 0
    while pos < len(lines):
        lineno = pos + 1
        action_line = _loads(lines[pos], lineno)
        if not isinstance(action_line, dict) or len(action_line) != 1:
            raise ValueError(f"line {lineno}: expected an action such as {{'index': {{}}}}")
        op, meta = next(iter(action_line.items()))
        if not isinstance(meta, dict):
            raise ValueError(f"line {lineno}: the {op!r} action's metadata must be an object")
        pos += 1
        index = meta.get("_index") or default_index or "_all"
        doc_id = str(meta.get("_id") or uuid.uuid4().hex[:20])
        if op == "delete":
            status, res = _REFUSED[op]
        elif op in _STORED or op == "update":
            if pos >= len(lines):
                raise ValueError(f"line {lineno}: the {op!r} action has no source line")
            source = _loads(lines[pos], pos + 1)
            pos += 1
            if not isinstance(source, dict):
                raise ValueError(f"line {pos}: the source must be a JSON object")
            if op == "update":
                status, res = _REFUSED[op]
            else:
                status, res = _STORED[op]
                record = dict(source)
                record[meta_key] = action_line
                result.records.append(record)
        else:
            raise ValueError(f"line {lineno}: unknown bulk action {op!r}")
        item: dict[str, Any] = {"_index": index, "_id": doc_id, "status": status, "result": res}
        if status < 300:
            item.update(
                _version=1,
                _seq_no=next(seq),
                _primary_term=1,
                _shards={"total": 1, "successful": 1, "failed": 0},
            )
        else:
            item["error"] = {"type": res, "reason": f"relaybit does not apply {op} actions"}
        result.items.append({op: item})
    return result


def _loads(line: bytes, lineno: int) -> Any:
    try:
        return json_loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"line {lineno}: invalid JSON: {exc}") from None


def _json(status: int, body: Any, reject: str | None = None) -> Reply:
    return Reply(
        status,
        orjson.dumps(body),
        [("Content-Type", "application/json"), *PRODUCT_HEADERS],
        reject=reject,
    )


def _es_error(status: int, kind: str, reason: str, reject: str | None = None) -> Reply:
    reply = _json(status, {"error": {"type": kind, "reason": reason}, "status": status}, reject)
    reply.log = reason
    return reply


#: The Elasticsearch error type of each refusal status.
_ERROR_TYPES = {
    401: "security_exception",
    413: "content_too_long",
    408: "timeout_exception",
    503: "es_rejected_execution_exception",
}


class ElasticsearchInput(HttpServerInput):
    """Receives records through the Elasticsearch Bulk API."""

    description = "Elasticsearch Bulk API compatible server"
    options: ClassVar[ConfigMap] = (
        ConfigMap(
            (
                Option("port", "int", 9200, "TCP port", minimum=0, maximum=65535),
                Option("meta_key", "str", "@meta", "Record key holding the bulk action line"),
                Option("hostname", "str", "localhost", "Host name announced by /_nodes/http"),
                Option("version", "str", "8.0.0", "Elasticsearch version announced by GET /"),
            )
        )
        + SERVER_OPTIONS
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self._meta_key = opts.str("meta_key")
        self._hostname = opts.str("hostname")
        self._version = opts.str("version")
        self._node_name = socket.gethostname()[:32] or "relaybit"

    def version_document(self) -> dict[str, Any]:
        """The ``GET /`` answer, shaped as Elasticsearch's."""
        return {
            "name": self._node_name,
            "cluster_name": CLUSTER_NAME,
            "cluster_uuid": CLUSTER_NAME,
            "version": {
                "number": self._version,
                "build_flavor": "default",
                "lucene_version": "9.0.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def nodes_document(self) -> dict[str, Any]:
        """The ``GET /_nodes/http`` answer (sniffers, Beats)."""
        return {
            "_nodes": {"total": 1, "successful": 1, "failed": 0},
            "cluster_name": CLUSTER_NAME,
            "nodes": {
                self._node_name: {
                    "name": self._node_name,
                    "version": self._version,
                    "http": {
                        "publish_address": f"{self._hostname}:{self.port}",
                        "max_content_length_in_bytes": self._max_body,
                    },
                }
            },
        }

    def error(self, status: int, message: str, reason: str | None = None) -> Reply:
        kind = _ERROR_TYPES.get(status, "illegal_argument_exception")
        return _es_error(status, kind, message, reason)

    async def handle(self, request: Request) -> Reply:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if method == "HEAD":
            return Reply(200, b"", list(PRODUCT_HEADERS))
        if method == "GET":
            if path == "/":
                return _json(200, self.version_document())
            if path.startswith("/_nodes"):
                return _json(200, self.nodes_document())
            return _json(200, {})
        parts = [p for p in path.split("/") if p]
        is_bulk = bool(parts) and parts[-1] == "_bulk" and len(parts) <= 2
        if method == "PUT" and not is_bulk:
            return _json(200, {})
        if method not in ("POST", "PUT"):
            self.rejected += 1
            return _es_error(
                405, "illegal_argument_exception", f"{method} is not supported", "malformed"
            )
        if not is_bulk:
            self.rejected += 1
            return _es_error(
                400, "illegal_argument_exception", f"no handler for POST {path}", "malformed"
            )
        return await self._bulk(request, parts[0] if len(parts) == 2 else None)

    async def _bulk(self, request: Request, index: str | None) -> Reply:
        started = time.monotonic()
        try:
            body = decode_body(request, self._max_body)
            result = parse_bulk(body, default_index=index, meta_key=self._meta_key)
        except BodyTooLarge:
            self.rejected += 1
            return _es_error(
                413, "content_too_long", "decoded body larger than buffer_max_size", "too_large"
            )
        except ValueError as exc:
            self.rejected += 1
            return _es_error(400, "parse_exception", str(exc), "malformed")
        tag = self.ctx.tag or self.ctx.name
        groups = group_by_tag(result.records, tag, self._tag_key)
        self.records += await emit_records(self.ctx, groups, self.ctx.clock.time())
        took = int((time.monotonic() - started) * 1000)
        return _json(200, {"took": took, "errors": result.errors, "items": result.items})
