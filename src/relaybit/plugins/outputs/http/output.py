"""The ``http`` output: one POST per chunk, through the Upstream.

2xx: delivered.  429, 5xx and transport errors: the Upstream fails over to the
next node at once, and only when every node failed does the engine retry the
chunk.  Other 4xx: the receiver refused the data for good; the output logs it
once (status and the first 512 bytes of the body), counts it and returns
ERROR, so the chunk is not retried forever.
"""

from __future__ import annotations

import base64
import functools
import logging
import ssl
from collections.abc import Iterator
from typing import Any, ClassVar

from multidict import CIMultiDict

from relaybit.codec.msgpack import iter_entries
from relaybit.config.schema import ConfigMap, Options
from relaybit.errors import ConfigError, DeliveryError, NoHealthyNode, PermanentDeliveryError
from relaybit.net.http_connection import (
    HttpConnection,
    HttpConnector,
    HttpResponse,
    client_ssl_context,
    probe_get,
    raise_for_status,
)
from relaybit.net.oauth2_client import OAuth2Error, OAuth2Settings, TokenSource
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
from relaybit.record_accessor import RecordAccessor
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


def make_upstream(
    ctx: OutputContext,
    nodes: NodeSettingsCache,
    *,
    response_timeout: float | None = None,
    read_idle_timeout: float | None = None,
    proxy: str | None = None,
) -> Upstream:
    """The output's Upstream: its upstream file, or one node of host/port.

    ``response_timeout`` bounds each request (default ``net.io_timeout``),
    ``read_idle_timeout`` the time between two reads (default the same).
    """
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
        io_timeout=(
            response_timeout if response_timeout is not None else opts.float("net.io_timeout")
        )
        or None,
        read_idle_timeout=read_idle_timeout or None,
    )
    path = spec.settings.health_check_path

    async def probe(node: Node, connection: Connection) -> None:
        assert isinstance(connection, HttpConnection)
        await probe_get(path, node, connection)

    async def connect(node: Node, host: str, port: int) -> Connection:
        return await connector(node, host, port)

    # through a proxy the node's name goes to the proxy as it is: no local lookup
    resolver = _unresolved if proxy else None
    return Upstream(
        spec,
        connect,
        net=net,
        probe=probe,
        clock=ctx.clock,
        owner=ctx.name,
        resolver=resolver,
    )


async def _unresolved(host: str, port: int) -> list[tuple[str, int]]:
    return [(host, port)]


class HttpUpstreamOutput(OutputPlugin):
    """An output speaking HTTP through its Upstream: the base of ``http`` and ``es``.

    Owns the per-node settings, the Upstream (built at :meth:`start`, after every
    node's settings were checked), the once-per-change failure log, :meth:`stop`
    and the SIGHUP :meth:`reload_upstream`.
    """

    #: flushes in flight when ``workers`` is 0: one body is written (by an encoder
    #: process) while others are on the wire or waiting for their answer
    default_workers = 4

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        self._nodes = NodeSettingsCache(type(self).options, ctx.options, f"[OUTPUT] {ctx.name}")
        self.upstream: Upstream | None = None
        self._failures = FailureLog(ctx.logger, ctx.name, named_by_logger=True)

    def _timeouts(self) -> tuple[float | None, float | None]:
        """(whole request, between two reads) in seconds; None: ``net.io_timeout``."""
        return None, None

    def _proxy_url(self) -> str | None:
        """The HTTP proxy requests go through (None: straight to the nodes)."""
        return None

    def _check_node(self, node: Node) -> object:
        """A node's settings, computed now so bad values fail at start or reload."""
        return self._nodes.get(node)

    def _pooled(self) -> bool:
        """True when an encoder process may write this output's bodies."""
        return False

    async def start(self) -> None:
        for node in self.ctx.upstream.nodes if self.ctx.upstream is not None else ():
            self._check_node(node)
        pool = self.ctx.service.get("encoder_pool")
        if pool is not None and self._pooled():
            pool.start()  # ready by the time the first chunk comes
        total, idle = self._timeouts()
        self.upstream = make_upstream(
            self.ctx,
            self._nodes,
            response_timeout=total,
            read_idle_timeout=idle,
            proxy=self._proxy_url(),
        )
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
    """Sends chunks as HTTP POST (or PUT) requests (Fluent Bit's out_http)."""

    description = "HTTP client: json, json_lines, json_stream, msgpack or gelf bodies"
    options: ClassVar[ConfigMap] = OPTIONS

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[OUTPUT] {ctx.name}"
        check_http_keys(opts, section)
        self._method = opts.str("http_method").upper()
        self._response_timeout = opts.float("http.response_timeout")
        self._read_idle_timeout = opts.float("http.read_idle_timeout")
        self._proxy = opts.opt_str("proxy")
        self._body_key = RecordAccessor(k) if (k := opts.opt_str("body_key")) else None
        self._headers_key = RecordAccessor(k) if (k := opts.opt_str("headers_key")) else None
        oauth = OAuth2Settings.from_options(opts, section, ctx.config_dir)
        self._oauth = (
            TokenSource(
                oauth,
                default_timeout=self._response_timeout or None,
                clock=ctx.clock,
                logger=ctx.logger,
            )
            if oauth is not None
            else None
        )
        self._malformed_nodes: set[str] = set()
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
        #: an encoder process's job for this output: its key and the factory it builds from
        self._pool_job = (
            ("http", self._format, self._date_key, self._date_format, self._gelf, self._gzip),
            functools.partial(
                BodyEncoder,
                self._format,
                date_key=self._date_key,
                date_format=self._date_format,
                gelf=self._gelf,
                gzip=self._gzip,
            ),
        )
        self.delivered = 0  #: chunks confirmed with 2xx
        self.rejected = 0  #: chunks refused for good (4xx), not retried
        self.retries = 0  #: flushes handed back to the engine (every node failed)
        self.malformed = 0  #: 2xx answers whose body could not be read (delivered)
        self.skipped = 0  #: records without body_key/headers_key (body_key mode)

    def _timeouts(self) -> tuple[float | None, float | None]:
        return self._response_timeout, self._read_idle_timeout

    def _pooled(self) -> bool:
        return self._body_key is None and self._format != "msgpack"

    async def _pooled_body(self, chunk: Chunk) -> bytes | None:
        """The chunk's body written by an encoder process (None: write it here)."""
        pool = self.ctx.service.get("encoder_pool")
        if pool is None or not self._pooled():
            return None
        key, factory = self._pool_job
        done = await pool.encode(
            key, factory, chunk.data, chunk.records, chunk.tag, self.ctx.clock.time()
        )
        return done[0] if done is not None else None

    def _proxy_url(self) -> str | None:
        return self._proxy

    async def stop(self) -> None:
        await super().stop()
        if self._oauth is not None:
            await self._oauth.aclose()

    def encode(self, chunk: Chunk) -> bytes:
        """The (possibly gzipped) request body of a chunk."""
        return self._encode(chunk.data, chunk.tag, chunk.records)

    def _encode(self, data: bytes, tag: str, records: int | None = None) -> bytes:
        del tag  # no body format carries it (header_tag does)
        body = self._encoder.encode(data, records)
        return gzip_body(body) if self._gzip else body

    def _sender(
        self,
        body: bytes,
        tag: str,
        record_headers: tuple[tuple[str, str], ...] = (),
        content_type: str | None = None,
    ) -> Send:
        extra: tuple[tuple[str, str], ...] = ((self._header_tag, tag),) if self._header_tag else ()
        extra += record_headers
        ctype = content_type or CONTENT_TYPES[self._format]
        gzip = self._gzip and not record_headers and content_type is None

        async def send(node: Node, connection: Connection) -> None:
            assert isinstance(connection, HttpConnection)
            settings = self._nodes.get(node)
            headers = request_headers(
                settings,
                content_type=ctype,
                gzip=gzip,
                allow_duplicates=self._allow_dup and self._oauth is None,
                extra=extra,
            )
            token = None
            if self._oauth is not None:
                token = await self._token_for(node)
                headers["Authorization"] = "Bearer " + token
            response = await self._request(connection, settings.uri, body, headers)
            if response.status == 401 and self._oauth is not None and token is not None:
                # as Fluent Bit: a 401 refreshes the token and the request goes once more
                self.ctx.logger.info("%s answered 401: refreshing the OAuth2 token", node.name)
                self._oauth.invalidate(token)
                headers["Authorization"] = "Bearer " + await self._token_for(node)
                response = await self._request(connection, settings.uri, body, headers)
            raise_for_status(response)
            self._check_body(node, response)

        return send

    async def _request(
        self, connection: HttpConnection, uri: str, body: bytes, headers: CIMultiDict[str]
    ) -> HttpResponse:
        return await connection.request(
            self._method, uri, data=body, headers=headers, proxy=self._proxy
        )

    async def _token_for(self, node: Node) -> str:
        assert self._oauth is not None
        try:
            return await self._oauth.token()
        except OAuth2Error as exc:
            raise DeliveryError("oauth2", f"{node.name}: {exc}") from None

    def _check_body(self, node: Node, response: HttpResponse) -> None:
        """A 2xx whose body the client could not read: delivered, logged once per node."""
        if response.malformed is None:
            self._malformed_nodes.discard(node.name)
            return
        self.malformed += 1
        if node.name not in self._malformed_nodes:
            self._malformed_nodes.add(node.name)
            self.ctx.logger.warning(
                "%s answered %d with a malformed body (%s): counted as delivered, not sent"
                " again (logged once until it answers well)",
                node.name,
                response.status,
                response.malformed.splitlines()[0] if response.malformed else "",
            )

    def _requests(
        self, chunk: Chunk, split_key: Any, body: bytes | None = None
    ) -> Iterator[tuple[Any, Send, int, int]]:
        """(balance key, send, records, size) of every request of a chunk; ``body``: the
        whole chunk's, already written."""
        if body is not None:
            yield chunk.tag, self._sender(body, chunk.tag), chunk.records, len(body)
            return
        if self._body_key is None:
            for key, data, records in split_chunk(chunk, split_key):
                body = self._encode(data, chunk.tag, records)
                yield key, self._sender(body, chunk.tag), records, len(body)
            return
        for _, record in iter_entries(chunk.data):  # body_key: one request per record
            found = record_body(record, self._body_key, self._headers_key)
            if found is None:
                self.skipped += 1
                self.ctx.logger.log(
                    logging.WARNING if self.skipped == 1 else logging.DEBUG,
                    "%s: a record without a string at body_key %s or a map at headers_key %s"
                    " is not sent (as Fluent Bit; logged once, counted in skipped_records)",
                    chunk,
                    self._body_key.pattern,
                    self._headers_key.pattern if self._headers_key else "-",
                )
                continue
            body, headers = found
            ctype = next((v for n, v in headers if n.lower() == "content-type"), None)
            rest = tuple((n, v) for n, v in headers if n.lower() != "content-type")
            send = self._sender(body, chunk.tag, rest, ctype or "application/octet-stream")
            yield chunk.tag, send, 1, len(body)

    async def flush(self, chunk: Chunk) -> FlushResult:
        """Send ``chunk`` (one request, one per record-key value with balance hash, or one
        per record with body_key)."""
        assert self.upstream is not None, "start() first"
        split_key = record_split_key(self.upstream.settings)
        if self._oauth is not None:
            try:  # before any node is tried: a token endpoint down ejects no node
                await self._oauth.token()
            except OAuth2Error as exc:
                self.retries += 1
                self._failures.failed(str(chunk), NoHealthyNode(f"no OAuth2 token: {exc}"))
                return FlushResult.RETRY
        body = await self._pooled_body(chunk) if split_key is None else None
        try:
            for key, send, records, size in self._requests(chunk, split_key, body):
                await self.upstream.deliver(send, key=key, records=records, size=size)
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
            "malformed_responses": self.malformed,
        }
        if self._body_key is not None:
            out["skipped_records"] = self.skipped
        if self.upstream is not None:
            out["upstream"] = self.upstream.status()
        return out


def record_body(
    record: Any, body_key: RecordAccessor, headers_key: RecordAccessor | None
) -> tuple[bytes, tuple[tuple[str, str], ...]] | None:
    """body_key mode: the record's body (a string or bin) and headers (a map), or None.

    Fluent Bit sends a record only when both are found.
    """
    body = body_key.get(record)
    if isinstance(body, str):
        data = body.encode("utf-8", "surrogateescape")
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    else:
        return None
    if headers_key is None:
        return None
    found = headers_key.get(record)
    if not isinstance(found, dict):
        return None
    headers = tuple(
        (str(name), value if isinstance(value, str) else str(value))
        for name, value in found.items()
    )
    return data, headers


def check_http_keys(opts: Options, section: str) -> None:
    """Keys Fluent Bit declares that relaybit refuses, or warns about, at start."""
    method = opts.str("http_method").upper()
    if method not in ("POST", "PUT"):
        raise ConfigError(
            f"http_method {opts.str('http_method')!r}: supported methods are POST and PUT",
            opts.origin("http_method"),
            section=section,
            key="http_method",
        )
    if opts.opt_str("body_key") and not opts.opt_str("headers_key"):
        raise ConfigError(
            "body_key needs headers_key: Fluent Bit sends a record only when both are found",
            opts.origin("body_key"),
            section=section,
            key="body_key",
        )
    proxy = opts.opt_str("proxy")
    if proxy and not proxy.startswith("http://"):
        raise ConfigError(
            f"proxy {proxy!r}: expected http://HOST:PORT",
            opts.origin("proxy"),
            section=section,
            key="proxy",
        )
