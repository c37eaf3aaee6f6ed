"""The ``http`` input (Fluent Bit's in_http): POST JSON records to ``/<tag>``.

A body is a JSON object, a JSON array of objects, NDJSON (one object per
line, ``Content-Type: application/x-ndjson``), or a form
(``application/x-www-form-urlencoded``: one record), optionally gzip-compressed
(``Content-Encoding: gzip``).  The response is sent only after
``await ctx.emit(...)`` returned, so a 2xx means the records are stored.  A body
that does not parse gets a 400 with the reason, and nothing of it is stored.

Both this input and ``elasticsearch`` are served by
:class:`relaybit.net.http_server.HttpServer` (HTTP/1.1 with h11, HTTP/2 with
h2: h2c with prior knowledge and h2 over TLS by ALPN), configured from the
keys of :data:`SERVER_OPTIONS` (Fluent Bit's shared ``http_server.*`` map, its
aliases, the ``net.*`` keys of a server input, ``oauth2.*`` and ``tls.*``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import io
import ssl
import urllib.parse
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson
import zstandard

from relaybit.codec.jsonvalue import loads as json_loads
from relaybit.codec.msgpack import EventTime, new_packer
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError
from relaybit.net.http_server import Handler, HttpServer, Reply, Request, ServerSettings
from relaybit.net.jwt_auth import OAUTH2_JWT_OPTIONS, JwtValidator
from relaybit.net.limits import DEFAULT_MAX_CONNECTIONS
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.stream_clients import VERIFY_CLIENT_CERT, client_cert_required
from relaybit.upstream.node import TLS_OPTIONS, TLSSettings
from relaybit.upstream.tls import new_server_context

_CHUNK_NO_EFFECT = "nothing is allocated ahead: a read takes what the socket has"
_WORKERS_NO_EFFECT = "relaybit serves every connection of the input on its event loop"

#: Keys shared by the HTTP-based server inputs (http, elasticsearch).
SERVER_OPTIONS = (
    ConfigMap(
        (
            Option("listen", "str", "0.0.0.0", "Address to listen on"),
            Option(
                "http_server.buffer_max_size",
                "size",
                4 * 1024 * 1024,
                "Largest request body accepted; a larger one is answered 413 and its"
                " connection closed as soon as its declared or read size passes it",
            ),
            Option(
                "buffer_max_size", "size", 4 * 1024 * 1024, "Alias of http_server.buffer_max_size"
            ),
            Option(
                "http_server.buffer_chunk_size",
                "size",
                512 * 1024,
                "Read buffer step (Fluent Bit)",
                no_effect=_CHUNK_NO_EFFECT,
            ),
            Option(
                "buffer_chunk_size",
                "size",
                512 * 1024,
                "Alias of http_server.buffer_chunk_size",
                no_effect=_CHUNK_NO_EFFECT,
            ),
            Option(
                "http_server.http2",
                "bool",
                True,
                "Answer HTTP/2 beside HTTP/1.1: h2c with prior knowledge, h2 over TLS by ALPN",
            ),
            Option("http2", "bool", True, "Alias of http_server.http2"),
            Option(
                "http_server.idle_timeout",
                "time",
                10.0,
                "Close a connection idle (no request in progress) this long; 0 = never",
            ),
            Option(
                "http_server.max_connections",
                "int",
                DEFAULT_MAX_CONNECTIONS,
                "Most concurrent connections; a new one over it is closed at once (one log"
                " line per burst). 0 = unlimited (Fluent Bit's default); relaybit: 10000",
                minimum=0,
            ),
            Option(
                "max_connections",
                "int",
                DEFAULT_MAX_CONNECTIONS,
                "Alias of http_server.max_connections",
                minimum=0,
            ),
            Option(
                "http_server.workers",
                "int",
                1,
                "HTTP listener threads (Fluent Bit)",
                minimum=1,
                no_effect=_WORKERS_NO_EFFECT,
            ),
            Option(
                "workers",
                "int",
                1,
                "Alias of http_server.workers",
                minimum=1,
                no_effect=_WORKERS_NO_EFFECT,
            ),
            Option(
                "http_server.ingress_queue_event_limit",
                "size",
                8192,
                "Most requests being stored at once; a request over it is answered 503"
                " (0 = no limit)",
            ),
            Option(
                "http_server.ingress_queue_byte_limit",
                "size",
                256 * 1024 * 1024,
                "Most bytes of request bodies held at once (read, not yet stored); a"
                " request that passes it is answered 503 and its connection closed (0 = no"
                " limit)",
            ),
            Option(
                "net.share_port",
                "bool",
                False,
                "Let several listeners bind the port (SO_REUSEPORT)",
            ),
            Option("net.backlog", "int", 128, "Backlog of the listening socket", minimum=1),
            Option(
                "net.io_timeout",
                "time",
                30.0,
                "relaybit: time a request's head, then its body, may take before the client"
                " is answered 408 and disconnected (slow clients); 0 = no limit"
                " (Fluent Bit: idle time, default 0s)",
            ),
            Option(
                "net.accept_timeout",
                "time",
                10.0,
                "Time allowed for an incoming connection's TLS handshake; 0 = no limit",
            ),
            Option(
                "net.accept_timeout_log_error",
                "bool",
                True,
                "Log a handshake timeout as a warning (off: at debug level)",
            ),
            Option(
                "net.keepalive",
                "bool",
                True,
                "Keep connections open between requests (off: close after each response)",
            ),
            Option("tag_key", "str", None, "Record key whose value becomes the record's tag"),
            Option(
                "http_user",
                "str",
                None,
                "relaybit: require HTTP basic auth with this user",
            ),
            Option("http_passwd", "str", None, "relaybit: password for http_user", secret=True),
            VERIFY_CLIENT_CERT,
        )
    )
    + OAUTH2_JWT_OPTIONS
    + TLS_OPTIONS
)


def server_ssl_context(
    tls: TLSSettings, base_dir: Path, opts: Options | None = None
) -> ssl.SSLContext | None:
    """A server-side SSL context of its own from ``tls.*`` keys (None when ``tls`` is off;
    the http server adds its ALPN protocols to it).

    ``tls.crt_file``/``tls.key_file`` are the server certificate; with
    ``tls.verify on`` and a ``tls.ca_file`` (or ``tls.verify_client_cert on``)
    clients must present a certificate; ``tls.min_version``, ``tls.max_version``
    and ``tls.ciphers`` (:data:`~relaybit.upstream.node.TLS_OPTIONS`, applied by
    :mod:`relaybit.upstream.tls`) narrow what is offered.
    """
    require = client_cert_required(opts) if opts is not None else None
    return new_server_context(tls, base_dir, require_client_cert=require)


def _aliased(opts: Options, key: str, alias: str) -> Any:
    """``http_server.X`` when written, else its alias when written, else the default."""
    if opts.is_set(key) or not opts.is_set(alias):
        return opts[key]
    return opts[alias]


def server_settings(opts: Options, ssl_context: ssl.SSLContext | None) -> ServerSettings:
    """The :class:`ServerSettings` of an http/elasticsearch input's keys."""
    return ServerSettings(
        host=opts.str("listen"),
        port=opts.int("port"),
        max_body=int(_aliased(opts, "http_server.buffer_max_size", "buffer_max_size")),
        http2=bool(_aliased(opts, "http_server.http2", "http2")),
        ssl=ssl_context,
        max_connections=int(_aliased(opts, "http_server.max_connections", "max_connections")),
        idle_timeout=opts.float("http_server.idle_timeout"),
        io_timeout=opts.float("net.io_timeout"),
        accept_timeout=opts.float("net.accept_timeout"),
        accept_timeout_log_error=opts.bool("net.accept_timeout_log_error"),
        keepalive=opts.bool("net.keepalive"),
        backlog=opts.int("net.backlog"),
        reuse_port=opts.bool("net.share_port"),
        body_budget=opts.int("http_server.ingress_queue_byte_limit"),
        max_pending=opts.int("http_server.ingress_queue_event_limit"),
    )


def sanitize_tag(path: str) -> str:
    """The tag of a URI path as Fluent Bit makes it: the path without its first ``/``,
    every byte but ``[A-Za-z0-9_.]`` made ``_`` (``/app/`` is ``app_``; ``/`` is none)."""
    rest = path[1:] if path.startswith("/") else path
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in rest)


def parse_json_records(body: bytes, content_type: str) -> list[Any]:
    """Decode a JSON object, a JSON array, or NDJSON; ValueError with the reason."""
    text = body.strip()
    if not text:
        raise ValueError("empty body")
    ndjson = "ndjson" in content_type
    if not ndjson:
        try:
            value = json_loads(text)
        except orjson.JSONDecodeError as exc:
            if b"\n" not in text:
                raise ValueError(f"invalid JSON: {exc}") from None
            ndjson = True  # several JSON documents on lines, without the content type
        else:
            return value if isinstance(value, list) else [value]
    records: list[Any] = []
    for lineno, line in enumerate(text.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json_loads(line))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON on line {lineno}: {exc}") from None
    return records


def parse_urlencoded(body: bytes) -> dict[str, str]:
    """One record from ``key=value&...`` (``application/x-www-form-urlencoded``), as
    Fluent Bit reads it: keys as written, values percent-decoded (``+`` is a space),
    both trimmed; a pair without ``=`` or with an empty key is skipped."""
    record: dict[str, str] = {}
    for pair in body.split(b"&"):
        pair = pair.removeprefix(b"\n")
        key, sep, value = pair.partition(b"=")
        if not sep or not key:
            continue
        decoded = urllib.parse.unquote_to_bytes(value.strip().replace(b"+", b" "))
        record[key.strip().decode("utf-8", "replace")] = decoded.decode("utf-8", "replace")
    if not record:
        raise ValueError("no key=value pair in the form body")
    return record


def check_basic_auth(request: Request, user: str | None, passwd: str | None) -> bool:
    """True when no user is configured, or the request carries the right credentials."""
    if not user:
        return True
    header = request.header("authorization")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        got_user, _, got_pass = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(got_user.encode(), user.encode())
    pass_ok = hmac.compare_digest(got_pass.encode(), (passwd or "").encode())
    return user_ok and pass_ok


def decode_body(request: Request, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (gzip, zlib, deflate, zstd), at most
    ``limit`` bytes decoded.

    ValueError with the reason for an unknown encoding or a corrupt stream;
    :class:`BodyTooLarge` when the decoded body passes ``limit`` (a bomb).
    """
    encoding = request.header("content-encoding").strip().lower()
    if encoding in ("", "identity"):
        return request.body
    if encoding == "zstd":
        return _unzstd(request.body, limit)
    if encoding in ("gzip", "x-gzip"):
        wbits = [16 + zlib.MAX_WBITS]
    elif encoding == "zlib":
        wbits = [zlib.MAX_WBITS]
    elif encoding == "deflate":  # zlib-wrapped as HTTP says, or raw as some clients send
        wbits = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    error: zlib.error | None = None
    for bits in wbits:
        decoder = zlib.decompressobj(bits)
        try:
            data = decoder.decompress(request.body, limit + 1)
        except zlib.error as exc:
            error = exc
            continue
        if len(data) > limit:
            raise BodyTooLarge(limit)
        if not decoder.eof:
            raise ValueError(f"truncated {encoding} body")
        return data
    raise ValueError(f"invalid {encoding} body: {error}")


def _unzstd(body: bytes, limit: int) -> bytes:
    try:
        with zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(body), read_across_frames=True
        ) as reader:
            data = reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise ValueError(f"invalid zstd body: {exc}") from None
    if len(data) > limit:
        raise BodyTooLarge(limit)
    return data


class BodyTooLarge(ValueError):
    """A decoded body over ``buffer_max_size``."""


def group_by_tag(
    records: Iterable[dict[str, Any]], default_tag: str, tag_key: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by their tag (``tag_key``'s string value, else ``default_tag``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        tag = default_tag
        if tag_key:
            value = record.get(tag_key)
            if isinstance(value, str) and value:
                tag = value
        groups.setdefault(tag, []).append(record)
    return groups


async def emit_records(
    ctx: InputContext, groups: dict[str, list[dict[str, Any]]], now: float
) -> int:
    """Pack and emit each tag's records (all stamped ``now``); returns the count."""
    packer = new_packer()
    stamp = EventTime.from_float(now)
    total = 0
    for tag, records in groups.items():
        data = b"".join(packer.pack([stamp, r]) for r in records)
        await ctx.emit(tag, data, len(records))
        total += len(records)
    return total


def error_reply(status: int, message: str, reject: str | None = None) -> Reply:
    return Reply(
        status,
        f"error: {message}\n".encode(),
        [("Content-Type", "text/plain; charset=utf-8")],
        reject=reject,
    )


class HttpServerInput(InputPlugin, Handler):
    """An input served by :class:`HttpServer`: the http and elasticsearch inputs.

    Owns the server (``listen``, ``port``, the ``http_server.*``, ``net.*`` and
    ``tls.*`` keys), basic auth and ``oauth2.*`` token checks, the counters,
    ``start``, ``stop``, ``status`` and ``metrics``; subclasses answer whole
    requests in ``handle`` and say how they refuse one (``refuse``).
    """

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[INPUT] {ctx.name}"
        self._tag_key = opts.opt_str("tag_key")
        self._user = opts.opt_str("http_user")
        self._passwd = opts.opt_str("http_passwd")
        settings = server_settings(
            opts, server_ssl_context(TLSSettings.from_options(opts), ctx.config_dir, opts)
        )
        self._max_body = settings.max_body
        self.records = 0  #: records stored so far
        self.rejected = 0  #: requests answered with an error
        #: paths answered without credentials (the http input's /health)
        self.open_paths: frozenset[str] = frozenset()
        self.jwt = JwtValidator.from_options(
            opts, section=section, logger=ctx.logger, name=ctx.name
        )
        self.server = HttpServer(self, settings, name=ctx.name, logger=ctx.logger)

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        return self.server.port

    async def start(self) -> None:
        if self.jwt is not None:
            await self.jwt.start()
        try:
            await self.server.start()
        except BaseException:
            if self.jwt is not None:
                await self.jwt.stop()
            raise
        tls = " (TLS)" if self.server.settings.ssl is not None else ""
        self.ctx.logger.info("listening on %s:%d%s", self.server.settings.host, self.port, tls)

    async def stop(self) -> None:
        await self.server.stop()
        if self.jwt is not None:
            await self.jwt.stop()

    def status(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "records": self.records,
            "rejected": self.rejected,
            "connections": self.server.stats.open,
            "connections_total": self.server.stats.accepted,
            "connections_refused": self.server.stats.refused,
            "rejected_by_reason": dict(self.server.stats.rejected),
        }

    def metrics(self) -> dict[str, Any]:
        return self.server.stats.metrics()

    # ------------------------------------------------------------------ Handler

    def check(self, request: Request) -> Reply | None:
        if request.method == "GET" and request.path in self.open_paths:
            return None
        if not check_basic_auth(request, self._user, self._passwd):
            self.rejected += 1
            return self.refuse(401, "authentication required", "auth", basic=True)
        if self.jwt is not None:
            why = self.jwt.validate(request.headers.get("authorization"))
            if why is not None:
                self.rejected += 1
                reply = self.refuse(401, "unauthorized", "auth")
                reply.log = f"OAuth2 validation failed: {why} (rejected with 401)"
                return reply
        return None

    def too_large(self, request: Request | None, limit: int) -> Reply:
        self.rejected += 1
        return self.refuse(413, "payload larger than buffer_max_size", "too_large")

    def busy(self) -> Reply:
        return self.refuse(503, "deferred ingress queue is full", "busy")

    def refuse(self, status: int, message: str, reason: str, *, basic: bool = False) -> Reply:
        """The reply to a request refused for ``reason`` (``basic``: asking for credentials)."""
        reply = self.error(status, message, reason)
        if basic:
            reply.headers.append(("WWW-Authenticate", 'Basic realm="relaybit"'))
        return reply

    def error(self, status: int, message: str, reason: str | None = None) -> Reply:
        """An error reply in the input's format (plain text here; JSON for elasticsearch)."""
        return error_reply(status, message, reason)

    async def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.name} {self.server!r}>"


class HttpInput(HttpServerInput):
    """Receives JSON records over HTTP POST (Fluent Bit's in_http)."""

    description = "HTTP server receiving JSON records"
    options: ClassVar[ConfigMap] = (
        ConfigMap(
            (
                Option("port", "int", 9880, "TCP port", minimum=0, maximum=65535),
                Option(
                    "successful_response_code",
                    "int",
                    201,
                    "Status answered once the records are stored: 200, 201 or 204",
                ),
                Option(
                    "success_header",
                    "str",
                    None,
                    "Header added to successful responses: 'Name value'",
                    multiple=True,
                ),
                Option(
                    "enable_health_endpoint",
                    "bool",
                    False,
                    "Answer GET /health with a small JSON status (no credentials needed)",
                ),
                Option(
                    "add_remote_addr",
                    "bool",
                    False,
                    "Add the client's address (first X-Forwarded-For entry) to each record",
                ),
                Option(
                    "remote_addr_key",
                    "str",
                    "REMOTE_ADDR",
                    "Record key of the address added by add_remote_addr",
                ),
            )
        )
        + SERVER_OPTIONS
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        code = opts.int("successful_response_code")
        if code not in (200, 201, 204):
            raise ConfigError(
                f"expected 200, 201 or 204, got {code}",
                opts.origin("successful_response_code"),
                section=f"[INPUT] {ctx.name}",
                key="successful_response_code",
            )
        self._success_code = code
        self._success_headers = list(_parse_headers(opts.list("success_header")).items())
        self._fixed_tag = _explicit_tag(opts)
        self._health = opts.bool("enable_health_endpoint")
        self.open_paths = frozenset({"/health"}) if self._health else frozenset()
        self._remote_key = opts.str("remote_addr_key") if opts.bool("add_remote_addr") else None

    async def handle(self, request: Request) -> Reply:
        if self._health and request.method == "GET" and request.path == "/health":
            return Reply(200, health_message(), [("Content-Type", "application/json")])
        if request.method != "POST":
            self.rejected += 1
            return error_reply(400, "invalid HTTP method", "malformed")
        try:
            body = decode_body(request, self._max_body)
            if request.content_type == "application/x-www-form-urlencoded":
                records: list[Any] = [parse_urlencoded(body)]
            else:
                records = parse_json_records(body, request.content_type)
            if not all(isinstance(r, dict) for r in records):
                raise ValueError("every record must be a JSON object")
        except BodyTooLarge:
            self.rejected += 1
            return error_reply(413, "decoded payload larger than buffer_max_size", "too_large")
        except ValueError as exc:
            self.rejected += 1
            reply = error_reply(400, str(exc), "malformed")
            reply.log = f"{request.path}: {exc}"
            return reply
        if self._remote_key is not None:
            address = remote_addr(request)
            if address:
                key = self._remote_key
                records = [r if key in r else {**r, key: address} for r in records]
        tag = (
            self._fixed_tag
            or sanitize_tag(urllib.parse.unquote(request.path, encoding="latin-1"))
            or self.ctx.tag
            or self.ctx.name
        )
        groups = group_by_tag(records, tag, self._tag_key)
        self.records += await emit_records(self.ctx, groups, self.ctx.clock.time())
        return Reply(self._success_code, b"", list(self._success_headers))


def health_message() -> bytes:
    """Fluent Bit's ``GET /health`` document, with the time now (UTC, nanoseconds)."""
    now = datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z"
    return (
        "{\n"
        '  "status": "ok",\n'
        '  "message": "I can only show you the door. You\'re the one that has to walk'
        ' through it.",\n'
        f'  "timestamp": "{stamp}"\n'
        "}\n"
    ).encode()


def remote_addr(request: Request) -> str | None:
    """The client's address as Fluent Bit takes it: X-Forwarded-For's first entry."""
    forwarded = request.header("x-forwarded-for").partition(",")[0].strip()
    return forwarded or None


def _explicit_tag(opts: Options) -> str | None:
    """The instance's ``tag`` when the user set one (it then beats the URI path)."""
    if "tag" in opts and opts.is_set("tag"):
        return opts.opt_str("tag")
    return None


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, _, rest = str(value).strip().partition(" ")
        if name:
            headers[name] = rest.strip()
    return headers
