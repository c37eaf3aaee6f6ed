"""The ``es`` output: Bulk API requests through the Upstream, item by item.

A flush sends the chunk's pending records.  The whole request failing (429,
5xx, connection errors) fails over to the next node inside the Upstream.  When
the request succeeds, the response is read item by item: delivered items are
done for good; items refused for good (400 mapping errors ...) are logged once
with their reason and counted; retryable items (429, 5xx) are sent again,
alone, in a new bulk request to the next node, up to one round per node.  What
is still pending then goes back to the engine as RETRY, and the next flush of
the same chunk sends only those records (state kept by ``chunk.id``).
Fluent Bit retries the whole chunk, re-sending what already landed.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from relaybit.codec.records import gc_paused
from relaybit.config.schema import ConfigMap, Options
from relaybit.errors import ConfigError, DeliveryError, NoHealthyNode, PermanentDeliveryError
from relaybit.logging import counted
from relaybit.net.http_connection import HttpConnection, raise_for_status
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext
from relaybit.plugins.outputs.encoder_pool import EncoderPool
from relaybit.plugins.outputs.es.bulk import (
    BulkEncoder,
    BulkOutcome,
    ChunkState,
    PendingItems,
    decode_chunk,
    read_bulk_response,
)
from relaybit.plugins.outputs.es.options import OPTIONS, check_write_operation, decode_cloud_id
from relaybit.plugins.outputs.es.settings import EsSettings
from relaybit.plugins.outputs.http.encoder import gzip_body
from relaybit.plugins.outputs.http.output import HttpUpstreamOutput, request_headers
from relaybit.upstream.node import Node
from relaybit.upstream.upstream import Connection

#: Failed items quoted in one log line.
_QUOTED = 3


def apply_cloud_id(ctx: OutputContext) -> OutputContext:
    """``cloud_id``/``cloud_auth`` turned into host, port 443, tls and credentials."""
    opts = ctx.options
    cloud_id = opts.opt_str("cloud_id")
    if not cloud_id:
        return ctx
    section = f"[OUTPUT] {ctx.name}"
    try:
        host, port = decode_cloud_id(cloud_id)
    except ValueError as exc:
        raise ConfigError(
            str(exc), opts.origin("cloud_id"), section=section, key="cloud_id"
        ) from None
    values = {k: opts[k] for k in opts}
    values.update({"host": host, "port": port, "tls": True})
    auth = opts.opt_str("cloud_auth")
    if auth:
        user, _, passwd = auth.partition(":")
        values.update({"http_user": user, "http_passwd": passwd})
    origins = {k: o for k in opts if (o := opts.origin(k)) is not None}
    explicit = {k for k in opts if opts.is_set(k)} | {"host", "port", "tls"}
    new_opts = Options(opts.configmap, values, origins, explicit)
    return OutputContext(
        name=ctx.name,
        plugin=ctx.plugin,
        options=new_opts,
        config_dir=ctx.config_dir,
        clock=ctx.clock,
        logger=ctx.logger,
        service=ctx.service,
        upstream=ctx.upstream,
    )


class ElasticsearchOutput(HttpUpstreamOutput):
    """Sends chunks to Elasticsearch or OpenSearch with the Bulk API (Fluent Bit's out_es)."""

    description = "Elasticsearch / OpenSearch Bulk API client"
    options: ClassVar[ConfigMap] = OPTIONS

    def __init__(self, ctx: OutputContext) -> None:
        ctx = apply_cloud_id(ctx)
        super().__init__(ctx)
        opts = ctx.options
        self._section = f"[OUTPUT] {ctx.name}"
        self._es: dict[tuple[str, str, tuple[tuple[str, str], ...]], EsSettings] = {}
        self._gzip = opts.str("compress").lower() == "gzip"
        self._trace_output = opts.bool("trace_output")
        self._trace_error = opts.bool("trace_error")
        check_write_operation(EsSettings.from_values(dict(opts)), opts, self._section)
        self._pending = PendingItems()
        self._encoders: dict[EsSettings, BulkEncoder] = {}
        #: the output's own settings (a node without es keys of its own has them)
        self._output_settings = settings = EsSettings.from_values(dict(opts))
        #: an encoder process's job for this output: its key and the factory it builds from
        self._pool_job = (
            ("es", settings, self._gzip),
            functools.partial(BulkEncoder, settings, gzip=self._gzip),
        )
        self.delivered_records = 0  #: records confirmed by a bulk response
        self.failed_records = 0  #: records refused for good (logged, not retried)
        self.conflicts = 0  #: create answered 409: already there (a re-send)
        self.item_retries = 0  #: records re-sent alone after a 429/5xx item status
        self.rejected = 0  #: whole requests refused for good (4xx)

    def _settings(self, node: Node) -> EsSettings:
        # the node's keys are part of the key: a reload may change its index ...
        key = (
            node.name,
            node.address,
            tuple(sorted((k, p.value) for k, p in node.properties.items())),
        )
        found = self._es.get(key)
        if found is None:
            found = EsSettings.from_values(self._nodes.get(node).values)
            check_write_operation(found, self.ctx.options, f"{self._section} node {node.name}")
            self._es[key] = found
        return found

    def _check_node(self, node: Node) -> object:
        return self._settings(node)

    def _encoder(self, settings: EsSettings) -> BulkEncoder:
        encoder = self._encoders.get(settings)
        if encoder is None:
            encoder = self._encoders[settings] = BulkEncoder(settings)
        return encoder

    def pending_chunks(self) -> int:
        """Chunks with records still to deliver (kept across engine retries)."""
        return len(self._pending)

    async def flush(self, chunk: Chunk) -> FlushResult:
        assert self.upstream is not None, "start() first"
        pool = self.ctx.service.get("encoder_pool")
        state = None
        if pool is not None and not self._pending.known(chunk.id):
            state = await self._body_elsewhere(pool, chunk)
        if state is None:
            state = self._first_body(chunk)
        state.attempts += 1
        result = FlushResult.RETRY
        try:
            result = await self._flush(chunk, state)
        finally:
            if result is FlushResult.RETRY:
                self._pending.release(chunk.id)
        return result

    def _pooled(self) -> bool:
        return True

    def _first_body(self, chunk: Chunk) -> ChunkState:
        """The chunk's state, with its whole body written when no record of it went yet."""
        with gc_paused():
            # decoded and written in one go, the records freed before the collector
            # runs again (they would otherwise be walked while the request is out)
            state = self._pending.get(chunk.id, lambda: decode_chunk(chunk.data, chunk.records))
            if state.entries is None or len(state.pending) != state.total:
                return state  # its body is written, or only some of its records are left
            settings = self._output_settings
            body = self._encoder(settings).encode(
                state.entries, range(state.total), chunk.tag, self.ctx.clock.time()
            )
            state.entries = None
        # compressed once, whichever node and attempt sends it
        state.body = (settings, gzip_body(body) if self._gzip else body)
        state.gzipped = self._gzip
        return state

    async def _body_elsewhere(self, pool: EncoderPool, chunk: Chunk) -> ChunkState | None:
        """The chunk's state with its first body written by an encoder process; None when
        the pool hands the chunk back (the flush writes it here, as without a pool)."""
        settings = self._output_settings
        done = await pool.encode(
            *self._pool_job,
            chunk.data,
            chunk.records,
            chunk.tag,
            self.ctx.clock.time(),
        )
        if done is None or self._pending.known(chunk.id):
            return None
        body, total = done
        state = ChunkState(
            None, set(range(total)), total=total, body=(settings, body), gzipped=self._gzip
        )
        self._pending.add(chunk.id, state)
        return state

    async def _flush(self, chunk: Chunk, state: ChunkState) -> FlushResult:
        assert self.upstream is not None
        rounds = max(1, len(self.upstream_nodes()))
        for _ in range(rounds):
            if not state.pending:
                break
            try:
                await self.upstream.deliver(
                    lambda node, conn: self._send(chunk, state, node, conn),
                    key=chunk.tag,
                    records=len(state.pending),
                )
            except PermanentDeliveryError as exc:
                self.rejected += 1
                self.failed_records += len(state.pending)
                self.ctx.logger.error(
                    "%s: bulk request refused, %s not retried: %s",
                    chunk,
                    counted(len(state.pending), "record"),
                    exc.message,
                )
                self._pending.done(chunk.id)
                return FlushResult.ERROR
            except NoHealthyNode as exc:
                self._failures.failed(f"{chunk}: {counted(len(state.pending), 'record')}", exc)
                return FlushResult.RETRY
        if state.pending:
            self.ctx.logger.warning(
                "%s: %s still refused with 429/5xx after %s, will retry",
                chunk,
                counted(len(state.pending), "record"),
                counted(rounds, "round"),
            )
            return FlushResult.RETRY
        self._failures.delivered()
        self._pending.done(chunk.id)
        return FlushResult.OK

    def upstream_nodes(self) -> tuple[Node, ...]:
        if self.upstream is not None:
            return self.upstream.nodes  # the current ones, after a reload too
        spec = self.ctx.upstream
        return spec.nodes if spec is not None else (Node(name=self.ctx.name, host="", port=1),)

    async def _send(
        self, chunk: Chunk, state: ChunkState, node: Node, connection: Connection
    ) -> None:
        assert isinstance(connection, HttpConnection)
        settings = self._settings(node)
        pending = state.pending
        sent: Sequence[int] = range(state.total) if len(pending) == state.total else sorted(pending)
        written = state.body
        compressed = False
        if written is not None and written[0] == settings and len(pending) == state.total:
            body, compressed = written[1], state.gzipped
        else:
            with gc_paused():
                entries = state.entries
                if entries is None:  # let go after the first body: decode it again
                    entries = state.entries = decode_chunk(chunk.data, chunk.records)
                body = self._encoder(settings).encode(
                    entries, sent, chunk.tag, self.ctx.clock.time()
                )

        def plain() -> bytes:
            return gzip.decompress(body) if compressed else body

        if self._trace_output:
            self.ctx.logger.info(
                "bulk request to %s:\n%s",
                node.name,
                plain().decode("utf-8", "replace"),
            )
        node_settings = self._nodes.get(node)
        headers = request_headers(
            node_settings,
            content_type="application/x-ndjson",
            gzip=self._gzip,
            allow_duplicates=False,
        )
        api_key = node_settings.values.get("http_api_key")
        if api_key and not node_settings.http_user:
            headers["Authorization"] = f"ApiKey {api_key}"
        data = gzip_body(body) if self._gzip and not compressed else body
        response = await connection.request(
            "POST", settings.bulk_path(), data=data, headers=headers
        )
        raise_for_status(response)
        try:
            outcome = read_bulk_response(response.body, sent)
        except ValueError as exc:
            raise DeliveryError("protocol", f"{node.name}: {exc}") from exc
        self._apply(chunk, state, node, outcome, plain)

    def _apply(
        self,
        chunk: Chunk,
        state: ChunkState,
        node: Node,
        outcome: BulkOutcome,
        body: Callable[[], bytes],
    ) -> None:
        """Count what the bulk answer says; ``body()``: the request, for trace_error."""
        state.pending.difference_update(outcome.delivered)
        self.delivered_records += len(outcome.delivered)
        self.conflicts += outcome.conflicts
        if outcome.failed:
            state.pending.difference_update(e.index for e in outcome.failed)
            state.failed += len(outcome.failed)
            self.failed_records += len(outcome.failed)
            quoted = "; ".join(
                f"record {e.index}: {e.status} {e.reason}" for e in outcome.failed[:_QUOTED]
            )
            self.ctx.logger.error(
                "%s: %s refused by %s for good (not retried): %s",
                chunk,
                counted(len(outcome.failed), "record"),
                node.name,
                quoted,
            )
            if self._trace_error:
                self.ctx.logger.error("request was:\n%s", body().decode("utf-8", "replace"))
        if outcome.retryable:
            self.item_retries += len(outcome.retryable)
            first = outcome.retryable[0]
            self.ctx.logger.info(
                "%s: %s rejected by %s with %d (%s), re-sending %s alone",
                chunk,
                counted(len(outcome.retryable), "record"),
                node.name,
                first.status,
                first.reason,
                "it" if len(outcome.retryable) == 1 else "them",
            )

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delivered_records": self.delivered_records,
            "failed_records": self.failed_records,
            "conflicts": self.conflicts,
            "item_retries": self.item_retries,
            "rejected": self.rejected,
            "pending_chunks": len(self._pending),
        }
        if self.upstream is not None:
            out["upstream"] = self.upstream.status()
        return out
