"""The Upstream model: nodes, their TLS settings, and the Upstream's own settings.

Pure data, built by :mod:`relaybit.upstream.spec` from an upstream file.  Origins
never take part in equality, so the classic and YAML forms of one file are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, Options, OptionType, RawProperty

#: ``tls.min_version`` / ``tls.max_version`` values (Fluent Bit's spellings, lower-cased)
TLS_VERSIONS = ("tlsv1.1", "tlsv1.2", "tlsv1.3")

#: Keys a [NODE] section knows itself; every other key is a plugin key (node.extra).
TLS_OPTIONS = ConfigMap(
    (
        Option("tls", "bool", False, "Enable TLS to this node", per_node=True),
        Option("tls.verify", "bool", True, "Verify the peer certificate", per_node=True),
        Option(
            "tls.verify_hostname", "bool", False, "Check the certificate's hostname", per_node=True
        ),
        Option(
            "tls.debug",
            "int",
            1,
            "OpenSSL debug level",
            per_node=True,
            no_effect="TLS failures are logged as warnings naming the peer and the reason",
        ),
        Option("tls.vhost", "str", None, "SNI host name to send", per_node=True),
        Option("tls.ca_path", "str", None, "Directory of CA certificates", per_node=True),
        Option("tls.ca_file", "str", None, "CA certificate file (PEM)", per_node=True),
        Option("tls.crt_file", "str", None, "Client certificate file (PEM)", per_node=True),
        Option("tls.key_file", "str", None, "Client private key file (PEM)", per_node=True),
        Option(
            "tls.key_passwd", "str", None, "Password of the private key", per_node=True, secret=True
        ),
        Option(
            "tls.min_version",
            "str",
            None,
            "Lowest TLS version allowed",
            per_node=True,
            choices=TLS_VERSIONS,
        ),
        Option(
            "tls.max_version",
            "str",
            None,
            "Highest TLS version allowed",
            per_node=True,
            choices=TLS_VERSIONS,
        ),
        Option(
            "tls.ciphers", "str", None, "OpenSSL cipher list (TLS 1.2 and below)", per_node=True
        ),
    )
)

NODE_OPTIONS = (
    ConfigMap(
        (
            Option("name", "str", None, "Node name (mandatory, unique in the upstream)"),
            Option("host", "str", None, "Host name or IP address (mandatory)"),
            Option("port", "port", None, "TCP port 1..65535 (mandatory)"),
            Option("weight", "int", 1, "relaybit: weight for balance weighted", minimum=1),
            Option(
                "standby",
                "bool",
                False,
                "relaybit: takes traffic only when no active node is healthy",
            ),
        )
    )
    + TLS_OPTIONS
)

BALANCE_CHOICES = ("round_robin", "weighted", "least_pending", "hash")

UPSTREAM_OPTIONS = ConfigMap(
    (
        Option("name", "str", None, "Upstream name (mandatory)"),
        Option("balance", "str", "round_robin", "relaybit: balancing", choices=BALANCE_CHOICES),
        Option("hash_key", "str", "tag", "relaybit: 'tag' or a record key, for balance hash"),
        Option("max_failover", "int", 0, "relaybit: nodes tried per flush (0 = all)", minimum=0),
        Option(
            "max_fails", "int", 1, "relaybit: failures within fail_timeout that eject", minimum=1
        ),
        Option("fail_timeout", "time", 10.0, "relaybit: window counting failures"),
        Option("base_ejection_time", "time", 10.0, "relaybit: first ejection time; grows"),
        Option("max_ejection_time", "time", 300.0, "relaybit: cap of the ejection time"),
        Option(
            "max_ejection_percent",
            "int",
            100,
            "relaybit: most nodes ejected at once (%)",
            minimum=0,
            maximum=100,
        ),
        Option("health_check", "bool", False, "relaybit: active health checks"),
        Option("health_check.interval", "time", 10.0, "relaybit: seconds between probes"),
        Option("health_check.timeout", "time", 5.0, "relaybit: probe timeout"),
        Option("health_check.path", "str", "/", "relaybit: HTTP path probed (http, es)"),
        Option(
            "healthy_threshold", "int", 2, "relaybit: probes passed to become healthy", minimum=1
        ),
        Option(
            "unhealthy_threshold",
            "int",
            3,
            "relaybit: probes failed to become unhealthy",
            minimum=1,
        ),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSSettings:
    """The ``tls.*`` keys of a node (or of an output, as defaults)."""

    enabled: bool = False
    verify: bool = True
    verify_hostname: bool = False
    debug: int = 1
    vhost: str | None = None
    ca_path: str | None = None
    ca_file: str | None = None
    crt_file: str | None = None
    key_file: str | None = None
    key_passwd: str | None = field(default=None, repr=False)
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None

    @classmethod
    def from_options(cls, opts: Options) -> TLSSettings:
        return cls(
            enabled=opts.bool("tls"),
            verify=opts.bool("tls.verify"),
            verify_hostname=opts.bool("tls.verify_hostname"),
            debug=opts.int("tls.debug"),
            vhost=opts.opt_str("tls.vhost"),
            ca_path=opts.opt_str("tls.ca_path"),
            ca_file=opts.opt_str("tls.ca_file"),
            crt_file=opts.opt_str("tls.crt_file"),
            key_file=opts.opt_str("tls.key_file"),
            key_passwd=opts.opt_str("tls.key_passwd"),
            min_version=_lower(opts.opt_str("tls.min_version")),
            max_version=_lower(opts.opt_str("tls.max_version")),
            ciphers=opts.opt_str("tls.ciphers"),
        )


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One node of an Upstream.

    ``properties`` holds every key as written on the node (the known ones and the
    plugin keys alike), so an output can override its own options per node;
    ``extra`` is the subset that is not a known node key (``shared_key`` ...).
    """

    name: str
    host: str
    port: int
    tls: TLSSettings = TLSSettings()
    weight: int = 1
    standby: bool = False
    extra: dict[str, RawProperty] = field(default_factory=dict)
    properties: dict[str, RawProperty] = field(default_factory=dict, compare=False)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        tls = " tls" if self.tls.enabled else ""
        return f"<Node {self.name} {self.address}{tls}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    """The relaybit extensions of an ``[UPSTREAM]`` section (defaults = Fluent Bit)."""

    balance: str = "round_robin"
    hash_key: str = "tag"
    max_failover: int = 0
    max_fails: int = 1
    fail_timeout: float = 10.0
    base_ejection_time: float = 10.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 100
    health_check: bool = False
    health_check_interval: float = 10.0
    health_check_timeout: float = 5.0
    health_check_path: str = "/"
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3

    @classmethod
    def from_options(cls, opts: Options) -> UpstreamSettings:
        return cls(
            balance=opts.str("balance").lower(),
            hash_key=opts.str("hash_key"),
            max_failover=opts.int("max_failover"),
            max_fails=opts.int("max_fails"),
            fail_timeout=opts.float("fail_timeout"),
            base_ejection_time=opts.float("base_ejection_time"),
            max_ejection_time=opts.float("max_ejection_time"),
            max_ejection_percent=opts.int("max_ejection_percent"),
            health_check=opts.bool("health_check"),
            health_check_interval=opts.float("health_check.interval"),
            health_check_timeout=opts.float("health_check.timeout"),
            health_check_path=opts.str("health_check.path"),
            healthy_threshold=opts.int("healthy_threshold"),
            unhealthy_threshold=opts.int("unhealthy_threshold"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSpec:
    """An upstream file: one named set of nodes and its settings."""

    name: str
    nodes: tuple[Node, ...]
    settings: UpstreamSettings = UpstreamSettings()
    path: str = field(default="", compare=False)
    origin: Origin | None = field(default=None, compare=False)


#: ``net.*`` keys, accepted by every network output (Fluent Bit names).
NET_OPTIONS = ConfigMap(
    (
        Option("net.connect_timeout", "time", 10.0, "Connect timeout (TCP, TLS and handshake)"),
        Option("net.keepalive", "bool", True, "Reuse connections across flushes"),
        Option("net.keepalive_idle_timeout", "time", 30.0, "Close idle connections after this"),
        Option(
            "net.keepalive_max_recycle",
            "int",
            2000,
            "Close a connection after this many flushes (rebalances), 0 = never",
        ),
        Option("net.max_worker_connections", "int", 0, "Most connections per node (0 = no limit)"),
        Option("net.source_address", "str", None, "Local address to bind outgoing connections"),
        Option("net.dns.ttl", "time", 30.0, "relaybit: seconds a DNS answer is cached"),
        Option(
            "net.dns.mode",
            "str",
            None,
            "DNS over UDP or TCP",
            no_effect="relaybit resolves with the system resolver (getaddrinfo)",
        ),
        Option(
            "net.dns.resolver",
            "str",
            None,
            "DNS resolver (LEGACY or ASYNC)",
            no_effect="relaybit resolves with the system resolver (getaddrinfo)",
        ),
        Option(
            "net.dns.prefer_ipv4",
            "bool",
            False,
            "Try the IPv4 addresses of a host first (every address is still tried)",
        ),
        Option(
            "net.dns.prefer_ipv6",
            "bool",
            False,
            "Try the IPv6 addresses of a host first (every address is still tried)",
        ),
        Option(
            "net.tcp_keepalive",
            "bool",
            False,
            "TCP keepalive probes on connections",
            no_effect="idle connections close after net.keepalive_idle_timeout",
        ),
        Option(
            "net.tcp_keepalive_time",
            "int",
            -1,
            "Seconds idle before the first TCP keepalive probe",
            no_effect="idle connections close after net.keepalive_idle_timeout",
        ),
        Option(
            "net.tcp_keepalive_interval",
            "int",
            -1,
            "Seconds between TCP keepalive probes",
            no_effect="idle connections close after net.keepalive_idle_timeout",
        ),
        Option(
            "net.tcp_keepalive_probes",
            "int",
            -1,
            "Unanswered TCP keepalive probes before the connection is dropped",
            no_effect="idle connections close after net.keepalive_idle_timeout",
        ),
        Option(
            "net.connect_timeout_log_error",
            "bool",
            True,
            "Log connect timeouts as errors",
            no_effect="a node's failures are logged once per state change",
        ),
        Option(
            "net.proxy_env_ignore",
            "bool",
            False,
            "Ignore HTTP_PROXY/HTTPS_PROXY",
            no_effect="relaybit connects directly and reads no proxy variables",
        ),
    )
)

_BOOL: OptionType = "bool"
_STR: OptionType = "str"


def tls_proxy_options(refused: str) -> tuple[Option, ...]:
    """Fluent Bit's ``tls.proxy.*`` keys (TLS to an HTTP proxy), each refused with ``refused``."""
    return tuple(
        Option(f"tls.proxy.{key}", typ, default, "TLS to an HTTP proxy", refused=refused)
        for key, typ, default in (
            ("verify", _BOOL, True),
            ("verify_hostname", _BOOL, False),
            ("ca_path", _STR, None),
            ("ca_file", _STR, None),
        )
    )


#: Keys Fluent Bit gives every network output besides :data:`NET_OPTIONS` and
#: :data:`TLS_OPTIONS` (``ipv6``, the rest of its TLS map).
OUTPUT_TLS_EXTRA = ConfigMap(
    (
        Option(
            "ipv6",
            "bool",
            False,
            "Allow IPv6 addresses",
            no_effect="IPv4 and IPv6 addresses are both tried",
        ),
        Option(
            "tls.verify_client_cert",
            "bool",
            False,
            "Servers only",
            refused="it applies to servers; an output is a client (tls.crt_file and"
            " tls.key_file give the output's own certificate)",
        ),
        *(
            Option(
                f"tls.windows.{key}",
                "str",
                None,
                "Windows certificate store",
                refused="Windows only; relaybit reads PEM files (tls.ca_file, tls.crt_file)",
            )
            for key in ("certstore_name", "use_enterprise_store", "client_thumbprints")
        ),
        *tls_proxy_options(
            "TLS to an HTTP proxy is not implemented (the http output's proxy is plain http://)"
        ),
    )
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetSettings:
    """Connection settings of one output, shared by its Upstream's nodes."""

    connect_timeout: float = 10.0
    keepalive: bool = True
    keepalive_idle_timeout: float = 30.0
    keepalive_max_recycle: int = 2000
    max_worker_connections: int = 0
    source_address: str | None = None
    dns_ttl: float = 30.0
    #: ``net.dns.prefer_ipv4`` / ``net.dns.prefer_ipv6``: that family's addresses first
    dns_prefer: str | None = None

    @classmethod
    def from_options(cls, opts: Options) -> NetSettings:
        return cls(
            connect_timeout=opts.float("net.connect_timeout"),
            keepalive=opts.bool("net.keepalive"),
            keepalive_idle_timeout=opts.float("net.keepalive_idle_timeout"),
            keepalive_max_recycle=opts.int("net.keepalive_max_recycle"),
            max_worker_connections=opts.int("net.max_worker_connections"),
            source_address=opts.opt_str("net.source_address"),
            dns_ttl=opts.float("net.dns.ttl"),
            dns_prefer=(
                "ipv4"
                if opts.bool("net.dns.prefer_ipv4")
                else "ipv6"
                if opts.bool("net.dns.prefer_ipv6")
                else None
            ),
        )
