"""The ``http`` input (Fluent Bit's in_http): POST JSON records to ``/<tag>``.

A body is a JSON object, a JSON array of objects, or NDJSON (one object per
line, ``Content-Type: application/x-ndjson``), optionally gzip-compressed
(``Content-Encoding: gzip``).  The response is sent only after
``await ctx.emit(...)`` returned, so a 2xx means the records are stored.  A body
that does not parse gets a 400 with the reason, and nothing of it is stored.

The small aiohttp server used here (:class:`HttpListener`) is shared with the
``elasticsearch`` input.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson
from aiohttp import web

from relaybit.codec.msgpack import EventTime, new_packer
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.upstream.node import TLS_OPTIONS, TLSSettings
from relaybit.upstream.tls import server_context

#: Keys shared by the HTTP-based server inputs (http, elasticsearch).
SERVER_OPTIONS = (
    ConfigMap(
        (
            Option("listen", "str", "0.0.0.0", "Address to listen on"),
            Option("buffer_max_size", "size", 4 * 1024 * 1024, "Largest request body accepted"),
            Option(
                "buffer_chunk_size",
                "size",
                512 * 1024,
                "Read buffer allocation step (accepted; aiohttp manages its buffers)",
            ),
            Option("tag_key", "str", None, "Record key whose value becomes the record's tag"),
            Option(
                "http_user",
                "str",
                None,
                "relaybit: require HTTP basic auth with this user",
            ),
            Option("http_passwd", "str", None, "relaybit: password for http_user", secret=True),
        )
    )
    + TLS_OPTIONS
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def server_ssl_context(tls: TLSSettings, base_dir: Path) -> ssl.SSLContext | None:
    """A server-side SSL context from ``tls.*`` keys (None when ``tls`` is off).

    ``tls.crt_file``/``tls.key_file`` are the server certificate; with
    ``tls.verify on`` and a ``tls.ca_file`` clients must present a certificate.
    """
    return server_context(tls, base_dir)


def sanitize_tag(path: str) -> str:
    """The tag of a URI path as Fluent Bit makes it: only ``[A-Za-z0-9_.]`` kept."""
    return "".join(c if c.isalnum() or c in "_." else "_" for c in path.strip("/"))


def parse_json_records(body: bytes, content_type: str) -> list[Any]:
    """Decode a JSON object, a JSON array, or NDJSON; ValueError with the reason."""
    text = body.strip()
    if not text:
        raise ValueError("empty body")
    ndjson = "ndjson" in content_type
    if not ndjson:
        try:
            value = orjson.loads(text)
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
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON on line {lineno}: {exc}") from None
    return records


def check_basic_auth(request: web.Request, user: str | None, passwd: str | None) -> bool:
    """True when no user is configured, or the request carries the right credentials."""
    if not user:
        return True
    header = request.headers.get("Authorization", "")
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


class HttpListener:
    """An aiohttp server on ``listen:port`` running one catch-all handler."""

    def __init__(
        self,
        handler: Handler,
        *,
        listen: str,
        port: int,
        max_body: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._listen = listen
        self._port = port
        self._max_body = max_body
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self.port = 0  #: the bound port (useful with port 0)

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_route("*", "/{path:.*}", self._handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._listen, self._port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def __repr__(self) -> str:
        state = "running" if self._runner else "stopped"
        return f"<HttpListener {self._listen}:{self.port or self._port} {state}>"


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


def error_response(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=f"error: {message}\n")


class HttpServerInput(InputPlugin):
    """An input served by :class:`HttpListener`: the http and elasticsearch inputs.

    Owns the listener (``listen``, ``port``, ``buffer_max_size``, ``tls.*``), the
    optional basic auth, the counters, ``port``, ``start``, ``stop`` and ``status``;
    subclasses answer requests in ``_handle``.
    """

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self._tag_key = opts.opt_str("tag_key")
        self._user = opts.opt_str("http_user")
        self._passwd = opts.opt_str("http_passwd")
        self._max_body = opts.int("buffer_max_size")
        self.records = 0  #: records stored so far
        self.rejected = 0  #: requests answered with an error
        self._listener = HttpListener(
            self._handle,
            listen=opts.str("listen"),
            port=opts.int("port"),
            max_body=self._max_body,
            ssl_context=server_ssl_context(TLSSettings.from_options(opts), ctx.config_dir),
        )

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        return self._listener.port

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    def status(self) -> dict[str, Any]:
        return {"port": self.port, "records": self.records, "rejected": self.rejected}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


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
            )
        )
        + SERVER_OPTIONS
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        code = opts.int("successful_response_code")
        if code not in (200, 201, 204):
            from relaybit.errors import ConfigError

            raise ConfigError(
                f"expected 200, 201 or 204, got {code}",
                opts.origin("successful_response_code"),
                section=f"[INPUT] {ctx.name}",
                key="successful_response_code",
            )
        self._success_code = code
        self._success_headers = _parse_headers(opts.list("success_header"))
        self._fixed_tag = _explicit_tag(opts)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not check_basic_auth(request, self._user, self._passwd):
            self.rejected += 1
            return web.Response(
                status=401,
                text="error: authentication required\n",
                headers={"WWW-Authenticate": 'Basic realm="relaybit"'},
            )
        if request.method != "POST":
            self.rejected += 1
            return error_response(400, "invalid HTTP method")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.rejected += 1
            return error_response(413, "payload larger than buffer_max_size")
        try:
            records = parse_json_records(body, request.content_type)
            if not all(isinstance(r, dict) for r in records):
                raise ValueError("every record must be a JSON object")
        except ValueError as exc:
            self.rejected += 1
            self.ctx.logger.warning("rejected a request to %s: %s", request.path, exc)
            return error_response(400, str(exc))
        tag = self._fixed_tag or sanitize_tag(request.path) or self.ctx.tag or self.ctx.name
        groups = group_by_tag(records, tag, self._tag_key)
        self.records += await emit_records(self.ctx, groups, self.ctx.clock.time())
        return web.Response(status=self._success_code, headers=self._success_headers)


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
