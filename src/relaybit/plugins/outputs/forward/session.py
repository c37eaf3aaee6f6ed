"""Connecting to a forward node and sending it a chunk, as its node settings say.

Shared by the forward output plugin and the library sender (``relaybit.sender``),
which differ only in where the settings and the TLS context come from.
"""

from __future__ import annotations

import ssl as ssl_module
from typing import cast

from relaybit.net.forward_client import ForwardClient
from relaybit.plugins.outputs.forward.options import ForwardNodeSettings
from relaybit.upstream.node import NetSettings, Node
from relaybit.upstream.tls import server_hostname
from relaybit.upstream.upstream import Connection


async def connect_node(
    node: Node,
    host: str,
    port: int,
    settings: ForwardNodeSettings,
    ssl: ssl_module.SSLContext | None,
    net: NetSettings,
) -> ForwardClient:
    """A handshaken forward connection to ``node`` at ``host:port`` (its resolved address)."""
    return await ForwardClient.connect(
        host,
        port,
        ssl=ssl,
        server_hostname=server_hostname(settings.tls, node.host),
        timeout=net.connect_timeout,
        shared_key=settings.shared_key,
        self_hostname=settings.self_hostname,
        username=settings.username,
        password=settings.password,
        source_address=net.source_address,
    )


async def send_to_node(
    settings: ForwardNodeSettings, connection: Connection, tag: str, data: bytes, records: int
) -> None:
    """Send one chunk on ``connection``; the node's own ``tag`` replaces ``tag`` when set."""
    client = cast(ForwardClient, connection)
    await client.send_chunk(
        settings.tag or tag,
        data,
        records,
        compress=settings.compress,
        require_ack=settings.require_ack,
        ack_timeout=settings.ack_timeout,
        time_as_integer=settings.time_as_integer,
        send_options=settings.send_options,
        retain_metadata=settings.retain_metadata,
        extra_options=settings.extra_options,
    )
