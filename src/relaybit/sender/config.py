"""A sender's settings: where to send (an Upstream spec) and how (forward output keys).

The keyword arguments of :class:`~relaybit.sender.Sender` become the same
output-level option table the ``forward`` output uses
(:data:`~relaybit.plugins.outputs.forward.options.FORWARD_OUTPUT_OPTIONS`), so a
``[NODE]`` of an upstream file overrides them exactly as it does for the agent
(``shared_key``, ``tls.*``, ``require_ack_response`` ...).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relaybit.config.origin import Origin
from relaybit.config.schema import Options, RawProperty
from relaybit.plugins.outputs.forward.options import (
    FORWARD_OUTPUT_OPTIONS,
    ForwardNodeSettings,
    node_settings,
)
from relaybit.upstream.node import NetSettings, Node, TLSSettings, UpstreamSettings, UpstreamSpec
from relaybit.upstream.tls import client_context

MiB = 1024 * 1024
ORIGIN = Origin("relaybit.Sender()")

NodeAddress = tuple[str, int] | str | Node
OnFull = Literal["drop", "block"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderConfig:
    """Everything a sender needs, validated (built by :func:`build_config`)."""

    tag_prefix: str
    spec: UpstreamSpec
    options: Options = field(repr=False)
    net: NetSettings
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    base_dir: Path | None = None
    buffer_limit: int = 64 * MiB
    chunk_size: int = 1 * MiB
    flush_interval: float = 0.2
    on_full: OnFull = "drop"
    block_timeout: float = 1.0
    retry_wait: float = 0.5
    retry_max_wait: float = 30.0
    retry_limit: int | None = None
    max_in_flight: int = 4
    close_timeout: float = 5.0
    default: Callable[[Any], Any] | None = field(default=None, repr=False)

    def node_settings(self, node: Node) -> ForwardNodeSettings:
        """The effective forward settings of ``node`` (node keys > sender arguments)."""
        return node_settings(self.options, node)

    def ssl_for(self, settings: ForwardNodeSettings) -> ssl.SSLContext | None:
        """The client TLS context for a node with these settings (None: plain TCP)."""
        if not settings.tls.enabled:
            return None
        if self.ssl_context is not None:
            return self.ssl_context
        return client_context(settings.tls, self.base_dir)


def build_config(
    tag_prefix: str,
    *,
    host: str | None,
    port: int | None,
    nodes: Sequence[NodeAddress] | None,
    upstream: str | os.PathLike[str] | UpstreamSpec | None,
    upstream_settings: UpstreamSettings | None,
    shared_key: str | None,
    self_hostname: str,
    username: str | None,
    password: str | None,
    tls: bool | TLSSettings | ssl.SSLContext,
    require_ack: bool,
    ack_timeout: float,
    compress: str | None,
    time_as_integer: bool,
    net: NetSettings | None,
    **behaviour: Any,
) -> SenderConfig:
    """Check the arguments of a sender and build its :class:`SenderConfig`.

    Raises ``ValueError`` for contradictory arguments and ``ConfigError(s)`` for
    a bad upstream file or option value.
    """
    where = [name for name, given in (("upstream", upstream), ("nodes", nodes)) if given]
    if host is not None or port is not None:
        where.append("host/port")
    if len(where) > 1:
        raise ValueError(f"give one of upstream=, nodes= or host/port, not {' and '.join(where)}")
    ssl_context = tls if isinstance(tls, ssl.SSLContext) else None
    tls_settings = _tls_settings(tls)
    props = _properties(
        shared_key=shared_key,
        self_hostname=self_hostname,
        username=username,
        password=password,
        require_ack_response=require_ack,
        ack_response_timeout=ack_timeout,
        compress=compress,
        time_as_integer=time_as_integer,
    ) + _tls_properties(tls_settings)
    options = FORWARD_OUTPUT_OPTIONS.resolve(props, section="[SENDER]")
    name = f"sender-{tag_prefix}" if tag_prefix else "sender"
    base_dir: Path | None = None
    if upstream is not None:
        spec = _load_spec(upstream)
        base_dir = Path(spec.path).resolve().parent if spec.path else None
        if upstream_settings is not None:
            spec = UpstreamSpec(
                name=spec.name,
                nodes=spec.nodes,
                settings=upstream_settings,
                path=spec.path,
                origin=spec.origin,
            )
    else:
        addresses = nodes if nodes else [(host or "localhost", port or 24224)]
        built = tuple(_node(a, tls_settings) for a in addresses)
        spec = UpstreamSpec(
            name=name, nodes=built, settings=upstream_settings or UpstreamSettings()
        )
    config = SenderConfig(
        tag_prefix=tag_prefix,
        spec=spec,
        options=options,
        net=net or NetSettings(),
        ssl_context=ssl_context,
        base_dir=base_dir,
        **behaviour,
    )
    _check_behaviour(config)
    for node in spec.nodes:  # bad per-node values and certificate files fail now
        config.ssl_for(config.node_settings(node))
    return config


def _load_spec(upstream: str | os.PathLike[str] | UpstreamSpec) -> UpstreamSpec:
    if isinstance(upstream, UpstreamSpec):
        spec = upstream
    else:
        from relaybit.upstream.spec import load_upstream_file

        spec = load_upstream_file(Path(upstream))
    from relaybit.config.loader import check_keys
    from relaybit.config.model import AgentConfig, PluginInstance

    # every plugin key of a node must be a per-node key of the forward output
    check_keys(
        AgentConfig(outputs=(PluginInstance(kind="output", plugin="forward", upstream=spec),))
    )
    return spec


def _node(address: NodeAddress, tls: TLSSettings) -> Node:
    if isinstance(address, Node):
        return address
    if isinstance(address, str):
        host, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"node {address!r}: expected 'host:port' or (host, port)")
        host, port = host.strip("[]"), int(port_text)
    else:
        host, port = address
    if not 0 < port < 65536:
        raise ValueError(f"node {host}:{port}: the port must be 1..65535")
    return Node(name=f"{host}:{port}", host=host, port=port, tls=tls)


def _tls_settings(tls: bool | TLSSettings | ssl.SSLContext) -> TLSSettings:
    if isinstance(tls, TLSSettings):
        return tls
    return TLSSettings(enabled=bool(tls))


def _properties(**values: object) -> list[RawProperty]:
    props = []
    for key, value in values.items():
        if value is None:
            continue
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        props.append(RawProperty(key, text, ORIGIN))
    return props


def _tls_properties(tls: TLSSettings) -> list[RawProperty]:
    return _properties(
        **{
            "tls": tls.enabled,
            "tls.verify": tls.verify,
            "tls.verify_hostname": tls.verify_hostname,
            "tls.vhost": tls.vhost,
            "tls.ca_path": tls.ca_path,
            "tls.ca_file": tls.ca_file,
            "tls.crt_file": tls.crt_file,
            "tls.key_file": tls.key_file,
            "tls.key_passwd": tls.key_passwd,
        }
    )


def _check_behaviour(c: SenderConfig) -> None:
    problems = []
    if c.buffer_limit <= 0 or c.chunk_size <= 0:
        problems.append("buffer_limit and chunk_size must be positive")
    if c.flush_interval <= 0:
        problems.append("flush_interval must be positive")
    if c.on_full not in ("drop", "block"):
        problems.append(f"on_full must be 'drop' or 'block', not {c.on_full!r}")
    if c.block_timeout < 0 or c.retry_wait <= 0 or c.retry_max_wait < c.retry_wait:
        problems.append("need block_timeout >= 0 and 0 < retry_wait <= retry_max_wait")
    if c.retry_limit is not None and c.retry_limit < 0:
        problems.append("retry_limit must be None (retry while there is room) or >= 0")
    if c.max_in_flight < 1:
        problems.append("max_in_flight must be at least 1")
    if problems:
        raise ValueError("; ".join(problems))
