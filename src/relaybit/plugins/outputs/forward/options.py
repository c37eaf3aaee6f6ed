"""The ``forward`` output's keys, and their per-node resolution.

In upstream mode a key set on a ``[NODE]`` overrides the output's value, which
overrides the default (unlike Fluent Bit, the output-level ``shared_key`` also
applies to upstream nodes that set none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError
from relaybit.upstream.node import NET_OPTIONS, TLS_OPTIONS, Node, TLSSettings

FORWARD_OUTPUT_OPTIONS = (
    ConfigMap(
        (
            Option("host", "str", "127.0.0.1", "Host of the receiver (without upstream)"),
            Option("port", "port", 24224, "Port of the receiver (without upstream)"),
            Option("upstream", "str", None, "Upstream file with the nodes (read by the loader)"),
            Option("shared_key", "str", None, "Secure handshake key", per_node=True, secret=True),
            Option("self_hostname", "str", "localhost", "Host name sent in PING", per_node=True),
            Option("username", "str", None, "User for user authentication", per_node=True),
            Option(
                "password",
                "str",
                None,
                "Password for user authentication",
                per_node=True,
                secret=True,
            ),
            Option(
                "tag", "str", None, "Send records with this tag instead of theirs", per_node=True
            ),
            Option(
                "compress",
                "str",
                None,
                "gzip or zstd: send CompressedPackedForward (text: none)",
                per_node=True,
                choices=("text", "gzip", "zstd"),
            ),
            Option(
                "require_ack_response",
                "bool",
                True,
                "Wait for the receiver's ack (at-least-once); relaybit asks for acks"
                " by default (Fluent Bit: off)",
                per_node=True,
            ),
            Option(
                "ack_response_timeout",
                "time",
                190.0,
                "Seconds to wait for an ack before the chunk counts as not delivered",
                per_node=True,
            ),
            Option("send_options", "bool", False, "Send the option map with 'size'", per_node=True),
            Option(
                "time_as_integer",
                "bool",
                False,
                "Send integer seconds (old Fluentd)",
                per_node=True,
            ),
            Option(
                "retain_metadata_in_forward_mode",
                "bool",
                True,
                "Send records' metadata ([[time, metadata], record]); off: [time, record] only",
                per_node=True,
            ),
            Option(
                "fluentd_compat",
                "bool",
                False,
                "Fluentd's format for metrics and traces",
                no_effect="relaybit forwards logs only",
            ),
            Option(
                "empty_shared_key",
                "bool",
                False,
                "Do the secure handshake with an empty shared key",
                per_node=True,
            ),
            Option(
                "unix_path",
                "str",
                None,
                "Connect to a unix socket",
                refused="the forward output connects over TCP (host/port or an upstream)",
            ),
            Option(
                "add_option",
                "str",
                None,
                "'KEY VALUE' added to the options map of each message (sends the map)",
                multiple=True,
                per_node=True,
            ),
            Option(
                "net.io_timeout",
                "time",
                0.0,
                "A send (and its ack) taking longer fails over to the next node (0 = no limit)",
            ),
        )
    )
    + NET_OPTIONS
    + TLS_OPTIONS
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardNodeSettings:
    """The effective forward settings for one node (node > output > default)."""

    shared_key: str | None = field(default=None, repr=False)
    self_hostname: str = "localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tag: str | None = None
    compress: str | None = None
    require_ack: bool = False
    ack_timeout: float = 190.0
    send_options: bool = False
    time_as_integer: bool = False
    retain_metadata: bool = True
    extra_options: tuple[tuple[str, str], ...] = ()
    tls: TLSSettings = field(default_factory=TLSSettings)

    @classmethod
    def from_options(cls, opts: Options) -> ForwardNodeSettings:
        compress = opts.opt_str("compress")
        return cls(
            shared_key=(
                ""
                if opts.opt_str("shared_key") is None and opts.bool("empty_shared_key")
                else opts.opt_str("shared_key")
            ),
            self_hostname=opts.str("self_hostname") or "localhost",
            username=opts.opt_str("username"),
            password=opts.opt_str("password"),
            tag=opts.opt_str("tag"),
            compress=compress.lower() if compress and compress.lower() != "text" else None,
            require_ack=opts.bool("require_ack_response"),
            ack_timeout=opts.float("ack_response_timeout"),
            send_options=opts.bool("send_options"),
            time_as_integer=opts.bool("time_as_integer"),
            retain_metadata=opts.bool("retain_metadata_in_forward_mode"),
            extra_options=tuple(_option_pair(v) for v in opts.list("add_option")),
            tls=TLSSettings.from_options(opts),
        )


def _option_pair(value: str) -> tuple[str, str]:
    """``add_option KEY VALUE`` -> (KEY, VALUE); ConfigError without both."""
    key, _, rest = str(value).strip().partition(" ")
    if not key or not rest.strip():
        raise ConfigError(f"expected 'add_option KEY VALUE', got {value!r}", key="add_option")
    return key, rest.strip()


def merged_options(opts: Options, node: Node) -> Options:
    """``opts`` with the node's per-node keys applied (ConfigErrors when invalid)."""
    cmap = opts.configmap
    overrides = []
    for key, prop in node.properties.items():
        opt = cmap.get(key)
        if opt is not None and opt.per_node:
            overrides.append(prop)
    if not overrides:
        return opts
    node_opts = cmap.resolve(overrides, section=f"[NODE] {node.name}")
    values = dict(opts)
    origins = {k: o for k in values if (o := opts.origin(k)) is not None}
    explicit = {k for k in values if opts.is_set(k)}
    for key in node_opts:
        if node_opts.is_set(key):
            values[key] = node_opts[key]
            origin = node_opts.origin(key)
            if origin is not None:
                origins[key] = origin
            explicit.add(key)
    return Options(cmap, values, origins, explicit)


def node_settings(opts: Options, node: Node) -> ForwardNodeSettings:
    """The effective settings of ``node`` for an output whose options are ``opts``."""
    return ForwardNodeSettings.from_options(merged_options(opts, node))
