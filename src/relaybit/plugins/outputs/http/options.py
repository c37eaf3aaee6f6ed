"""The ``http`` output's keys (Fluent Bit's out_http names) and their per-node resolution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.net.oauth2_client import OAUTH2_OPTIONS
from relaybit.upstream.node import NET_OPTIONS, TLS_OPTIONS, Node, TLSSettings, UpstreamSpec

#: why aws_auth (SigV4) is refused, for the http and es outputs
AWS_REFUSED = (
    "AWS SigV4 signing is not implemented; put a SigV4 signing proxy in front of the"
    " receiver, or use http_user/http_passwd, http_api_key (es) or oauth2.* (http)"
)

HTTP_FORMATS = ("json", "json_lines", "json_stream", "msgpack", "gelf")
DATE_FORMATS = ("double", "epoch", "epoch_ms", "iso8601", "java_sql_timestamp")

#: Keys every HTTP-based output (http, es) accepts for its connection.
CONNECTION_OPTIONS = (
    ConfigMap(
        (
            Option("host", "str", "127.0.0.1", "Host of the single node (without upstream)"),
            Option("http_user", "str", None, "Basic auth user", per_node=True),
            Option("http_passwd", "str", "", "Basic auth password", per_node=True, secret=True),
            Option("compress", "str", None, "Compress request bodies: gzip", choices=("gzip",)),
            Option(
                "net.io_timeout",
                "time",
                60.0,
                "relaybit: seconds to wait for a response (then fail over)",
            ),
        )
    )
    + TLS_OPTIONS
    + NET_OPTIONS
)

OPTIONS = (
    ConfigMap(
        (
            Option("port", "port", 80, "Port of the single node (without upstream)"),
            Option("uri", "str", "/", "Request path", per_node=True),
            Option(
                "format",
                "str",
                "json",
                "Body format (Fluent Bit 5.1.1's default: json)",
                choices=HTTP_FORMATS,
            ),
            Option("http_method", "str", "POST", "Request method: POST or PUT (as Fluent Bit)"),
            Option(
                "http.response_timeout",
                "time",
                60.0,
                "Longest wait for a whole response (then the request fails over)",
            ),
            Option(
                "http.read_idle_timeout",
                "time",
                0.0,
                "Longest wait between two reads of a response (0: net.io_timeout)",
            ),
            Option("proxy", "str", None, "HTTP proxy, http://HOST:PORT"),
            Option(
                "body_key",
                "str",
                None,
                "Record accessor of a string sent as the body, one request per record",
            ),
            Option(
                "headers_key",
                "str",
                None,
                "Record accessor of a map sent as the headers (with body_key)",
            ),
            Option(
                "aws_auth",
                "bool",
                False,
                "AWS SigV4 request signing",
                refused=AWS_REFUSED,
            ),
            Option(
                "aws_service",
                "str",
                None,
                "AWS service name of aws_auth",
                no_effect="only aws_auth uses it, and relaybit refuses aws_auth",
            ),
            Option("json_date_key", "str", "date", "Key of the time in JSON (false: none)"),
            Option(
                "json_date_format",
                "str",
                "double",
                "Time format in JSON",
                choices=DATE_FORMATS,
            ),
            Option(
                "header",
                "str",
                None,
                "Extra header 'Name value' (repeatable)",
                multiple=True,
                per_node=True,
            ),
            Option(
                "allow_duplicated_headers",
                "bool",
                True,
                "Send a header named twice twice (off: the last one wins)",
            ),
            Option("log_response_payload", "bool", True, "Log the response body of errors"),
            Option("header_tag", "str", None, "Header that carries the chunk's tag"),
            Option("gelf_timestamp_key", "str", None, "GELF: record key of the timestamp"),
            Option("gelf_host_key", "str", None, "GELF: record key of the host"),
            Option("gelf_short_message_key", "str", None, "GELF: record key of short_message"),
            Option("gelf_full_message_key", "str", None, "GELF: record key of full_message"),
            Option("gelf_level_key", "str", None, "GELF: record key of the level"),
        )
    )
    + OAUTH2_OPTIONS
    + CONNECTION_OPTIONS
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSettings:
    """One node's effective request settings (node keys over output keys)."""

    uri: str = "/"
    http_user: str | None = None
    http_passwd: str = field(default="", repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    tls: TLSSettings = field(default_factory=TLSSettings)
    values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def parse_header(value: str) -> tuple[str, str]:
    """``"Name value"`` (or ``"Name: value"``) -> (name, value)."""
    name, _, rest = str(value).strip().partition(" ")
    return name.rstrip(":"), rest.strip()


def resolve_node(
    configmap: ConfigMap, opts: Options, node: Node, *, section: str
) -> dict[str, Any]:
    """The output's values with the node's per-node keys (``tls.*`` ...) laid over them.

    Keys of the node that are not this output's per-node keys are left alone
    (they may belong to another output sharing the upstream file).
    Raises ConfigError naming the node's file and line for a bad value.
    """
    values = {key: opts[key] for key in opts}
    errors: list[ConfigError] = []
    replaced: set[str] = set()
    for prop in node.properties.values():
        opt = configmap.get(prop.key)
        if opt is None or not opt.per_node:
            continue
        try:
            converted = opt.convert(prop.value)
        except ValueError as exc:
            errors.append(
                ConfigError(
                    str(exc), prop.origin, section=f"{section} node {node.name}", key=opt.name
                )
            )
            continue
        if opt.multiple:
            if opt.name not in replaced:
                values[opt.name] = []
                replaced.add(opt.name)
            values[opt.name].append(converted)
        else:
            values[opt.name] = converted
    if errors:
        raise ConfigErrors(errors)
    return values


def tls_from_values(values: dict[str, Any]) -> TLSSettings:
    """TLSSettings of resolved values (``tls``, ``tls.verify`` ...)."""
    return TLSSettings(
        enabled=bool(values.get("tls")),
        verify=bool(values.get("tls.verify", True)),
        verify_hostname=bool(values.get("tls.verify_hostname")),
        debug=int(values.get("tls.debug") or 1),
        vhost=values.get("tls.vhost"),
        ca_path=values.get("tls.ca_path"),
        ca_file=values.get("tls.ca_file"),
        crt_file=values.get("tls.crt_file"),
        key_file=values.get("tls.key_file"),
        key_passwd=values.get("tls.key_passwd"),
    )


def node_settings(configmap: ConfigMap, opts: Options, node: Node, *, section: str) -> NodeSettings:
    """The effective settings of ``node`` for an HTTP-based output."""
    values = resolve_node(configmap, opts, node, section=section)
    headers = tuple(parse_header(h) for h in values.get("header") or ())
    return NodeSettings(
        uri=str(values.get("uri") or "/"),
        http_user=values.get("http_user"),
        http_passwd=str(values.get("http_passwd") or ""),
        headers=headers,
        tls=tls_from_values(values),
        values=values,
    )


def single_node_spec(name: str, opts: Options) -> UpstreamSpec:
    """A one-node upstream of the output's own ``host``/``port`` (no ``upstream`` key)."""
    node = Node(
        name=name,
        host=opts.str("host") or "127.0.0.1",
        port=opts.int("port"),
        tls=TLSSettings.from_options(opts),
    )
    return UpstreamSpec(name=name, nodes=(node,))


class NodeSettingsCache:
    """Per-node settings, computed once per node (and checked up front for every node)."""

    def __init__(self, configmap: ConfigMap, opts: Options, section: str) -> None:
        self._configmap = configmap
        self._opts = opts
        self._section = section
        self._cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], NodeSettings] = {}

    def get(self, node: Node) -> NodeSettings:
        key = (
            node.name,
            node.address,
            tuple(sorted((k, p.value) for k, p in node.properties.items())),
        )
        found = self._cache.get(key)
        if found is None:
            found = node_settings(self._configmap, self._opts, node, section=self._section)
            self._cache[key] = found
        return found

    def __repr__(self) -> str:
        return f"<NodeSettingsCache {self._section} nodes={len(self._cache)}>"
