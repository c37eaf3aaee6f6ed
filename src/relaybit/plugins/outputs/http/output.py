"""The ``http`` output: one POST per chunk, through the Upstream.

2xx: delivered.  429, 5xx and transport errors: the Upstream fails over to the
next node at once, and only when every node failed does the engine retry the
chunk.  Other 4xx: the receiver refused the data for good; the output logs it
once (status and the first 512 bytes of the body), counts it and returns
ERROR, so the chunk is not retried forever.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any, ClassVar

from multidict import CIMultiDict

from relaybit.config.schema import ConfigMap
from relaybit.errors import NoHealthyNode, PermanentDeliveryError
from relaybit.net.http_connection import (
    HttpConnection,
    HttpConnector,
    client_ssl_context,
    probe_get,
    raise_for_status,
)
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin
from relaybit.plugins.outputs.formats import date_key_option
from relaybit.plugins.outputs.http.encoder import CONTENT_TYPES, BodyEncoder, GelfKeys, gzip_body
from relaybit.plugins.outputs.http.options import (
    OPTIONS,
    NodeSettings,
    NodeSettingsCache,
    single_node_spec,
)
from relaybit.plugins.outputs.upstream_support import (
    FailureLog,
    record_split_key,
    reread_upstream,
    split_chunk,
)
from relaybit.upstream.node import NetSettings, Node, TLSSettings
from relaybit.upstream.upstream import Connection, Send, Upstream


def basic_auth(user: str, passwd: str) -> str:
    """The ``Authorization`` value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{passwd}".encode()).decode("ascii")


def request_headers(
    settings: NodeSettings,
    *,
    content_type: str,
    gzip: bool,
    allow_duplicates: bool,
    extra: tuple[tuple[str, str], ...] = (),
) -> CIMultiDict[str]:
    """The headers of one request to one node (user headers last, as Fluent Bit)."""
    headers: CIMultiDict[str] = CIMultiDict()
    headers["Content-Type"] = content_type
    headers["User-Agent"] = "relaybit"
    if gzip:
        headers["Content-Encoding"] = "gzip"
    if settings.http_user:
        headers["Authorization"] = basic_auth(settings.http_user, settings.http_passwd)
    for name, value in (*extra, *settings.headers):
        if allow_duplicates:
            headers.add(name, value)
        else:
            headers[name] = value
    return headers


def make_upstream(ctx: OutputContext, nodes: NodeSettingsCache) -> Upstream:
    """The output's Upstream: its upstream file, or one node of host/port."""
    opts = ctx.options
    spec = ctx.upstream or single_node_spec(ctx.name, opts)
    for node in spec.nodes:  # bad per-node values fail at start, not at the first flush
        nodes.get(node)
    net = NetSettings.from_options(opts)
    contexts: dict[TLSSettings, ssl.SSLContext | None] = {}

    def ssl_for(node: Node) -> ssl.SSLContext | None:
        tls = nodes.get(node).tls
        if tls not in contexts:
            contexts[tls] = client_ssl_context(tls, ctx.config_dir)
        return contexts[tls]

    for node in spec.nodes:  # missing certificate files fail at start too
        ssl_for(node)
    connector = HttpConnector(
        ssl_for,
        net,
        io_timeout=opts.float("net.io_timeout") or None,
    )
    path = spec.settings.health_check_path

    async def probe(node: Node, connection: Connection) -> None:
        assert isinstance(connection, HttpConnection)
        await probe_get(path, node, connection)

    async def connect(node: Node, host: str, port: int) -> Connection:
        return await connector(node, host, port)

    return Upstream(spec, connect, net=net, probe=probe, clock=ctx.clock, owner=ctx.name)


class HttpUpstreamOutput(OutputPlugin):
    """An output speaking HTTP through its Upstream: the base of ``http`` and ``es``.

    Owns the per-node settings, the Upstream (built at :meth:`start`, after every
    node's settings were checked), the once-per-change failure log, :meth:`stop`
    and the SIGHUP :meth:`reload_upstream`.
    """

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        self._nodes = NodeSettingsCache(type(self).options, ctx.options, f"[OUTPUT] {ctx.name}")
        self.upstream: Upstream | None = None
        self._failures = FailureLog(ctx.logger, ctx.name, named_by_logger=True)

    def _check_node(self, node: Node) -> object:
        """A node's settings, computed now so bad values fail at start or reload."""
        return self._nodes.get(node)

    async def start(self) -> None:
        for node in self.ctx.upstream.nodes if self.ctx.upstream is not None else ():
            self._check_node(node)
        self.upstream = make_upstream(self.ctx, self._nodes)
        await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()

    def reload_upstream(self) -> None:
        """SIGHUP: re-read the upstream file; new nodes take traffic, removed ones drain.

        The new file is validated first: on ConfigErrors the running nodes stay.
        """
        path = self.ctx.upstream.path if self.ctx.upstream is not None else ""
        spec = reread_upstream(self.ctx, path, self._check_node)
        if spec is not None and self.upstream is not None:
            self.upstream.reload(spec)


class HttpOutput(HttpUpstreamOutput):
    """Sends chunks as HTTP POST requests (Fluent Bit's out_http)."""

    description = "HTTP client: json, json_lines, json_stream, msgpack or gelf bodies"
    options: ClassVar[ConfigMap] = OPTIONS

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self._format = opts.str("format").lower()
        self._date_key = date_key_option(opts.opt_str("json_date_key"))
        self._date_format = opts.str("json_date_format").lower()
        self._gzip = opts.str("compress").lower() == "gzip"
        self._allow_dup = opts.bool("allow_duplicated_headers")
        self._log_payload = opts.bool("log_response_payload")
        self._header_tag = opts.opt_str("header_tag")
        self._gelf = GelfKeys(
            timestamp=opts.opt_str("gelf_timestamp_key"),
            host=opts.opt_str("gelf_host_key"),
            short_message=opts.opt_str("gelf_short_message_key"),
            full_message=opts.opt_str("gelf_full_message_key"),
            level=opts.opt_str("gelf_level_key"),
        )
        self._encoder = BodyEncoder(
            self._format, date_key=self._date_key, date_format=self._date_format, gelf=self._gelf
        )
        self.delivered = 0  #: chunks confirmed with 2xx
        self.rejected = 0  #: chunks refused for good (4xx), not retried
        self.retries = 0  #: flushes handed back to the engine (every node failed)

    def encode(self, chunk: Chunk) -> bytes:
        """The (possibly gzipped) request body of a chunk."""
        return self._encode(chunk.data, chunk.tag)

    def _encode(self, data: bytes, tag: str) -> bytes:
        del tag  # no body format carries it (header_tag does)
        body = self._encoder.encode(data)
        return gzip_body(body) if self._gzip else body

    def _sender(self, body: bytes, tag: str) -> Send:
        extra = ((self._header_tag, tag),) if self._header_tag else ()

        async def send(node: Node, connection: Connection) -> None:
            assert isinstance(connection, HttpConnection)
            settings = self._nodes.get(node)
            headers = request_headers(
                settings,
                content_type=CONTENT_TYPES[self._format],
                gzip=self._gzip,
                allow_duplicates=self._allow_dup,
                extra=extra,
            )
            response = await connection.request("POST", settings.uri, data=body, headers=headers)
            raise_for_status(response)

        return send

    async def flush(self, chunk: Chunk) -> FlushResult:
        """POST ``chunk`` (one request, or one per record-key value with balance hash)."""
        assert self.upstream is not None, "start() first"
        split_key = record_split_key(self.upstream.settings)
        try:
            for key, data, records in split_chunk(chunk, split_key):
                body = self._encode(data, chunk.tag)
                await self.upstream.deliver(
                    self._sender(body, chunk.tag), key=key, records=records, size=len(body)
                )
        except PermanentDeliveryError as exc:
            self.rejected += 1
            detail = exc.message if self._log_payload else exc.message.split(":", 1)[0]
            self.ctx.logger.error("%s rejected by the receiver, not retried: %s", chunk, detail)
            return FlushResult.ERROR
        except NoHealthyNode as exc:
            self.retries += 1
            self._failures.failed(str(chunk), exc)
            return FlushResult.RETRY
        self._failures.delivered()
        self.delivered += 1
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delivered": self.delivered,
            "rejected": self.rejected,
            "retries": self.retries,
        }
        if self.upstream is not None:
            out["upstream"] = self.upstream.status()
        return out
