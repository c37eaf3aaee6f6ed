"""The ``forward`` output: chunks go out as PackedForward through an Upstream.

Without ``upstream`` the output has a one-node Upstream made of ``host``/``port``.
A flush is OK only when a node took it (acked when ``require_ack_response``);
when every node failed it is RETRY (the engine retries; nothing is dropped),
and a permanent rejection is ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from relaybit.config.schema import ConfigMap
from relaybit.errors import ConfigError, DeliveryError, NoHealthyNode, PermanentDeliveryError
from relaybit.net.forward_client import ForwardClient
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin
from relaybit.plugins.outputs.forward.options import (
    FORWARD_OUTPUT_OPTIONS,
    ForwardNodeSettings,
    node_settings,
)
from relaybit.plugins.outputs.forward.session import connect_node, send_to_node
from relaybit.plugins.outputs.upstream_support import (
    FailureLog,
    record_split_key,
    reread_upstream,
    split_chunk,
)
from relaybit.upstream.node import NetSettings, Node, TLSSettings, UpstreamSpec
from relaybit.upstream.tls import client_context
from relaybit.upstream.upstream import Connection, Upstream


async def heartbeat_probe(node: Node, connection: Connection) -> None:
    """Active health check: send a msgpack ``nil`` on a pooled connection."""
    client = cast(ForwardClient, connection)
    await client.heartbeat()


def ctx_single(spec: UpstreamSpec) -> bool:
    """One node made of the output's own host and port (no upstream file)."""
    return not spec.path and len(spec.nodes) == 1


class ForwardOutput(OutputPlugin):
    """Send chunks over the Forward protocol to one host or an Upstream of nodes."""

    options: ClassVar[ConfigMap] = FORWARD_OUTPUT_OPTIONS
    description: ClassVar[str] = "Forward protocol client (to Fluentd, Fluent Bit, relaybit)"

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.log = ctx.logger if ctx.logger is not None else logging.getLogger("relaybit")
        self.net = NetSettings.from_options(opts)
        self.io_timeout = opts.float("net.io_timeout")
        self.spec = ctx.upstream or UpstreamSpec(
            name=ctx.name,
            nodes=(
                Node(
                    name=f"{opts.str('host')}:{opts.int('port')}",
                    host=opts.str("host"),
                    port=opts.int("port"),
                    tls=TLSSettings.from_options(opts),
                ),
            ),
        )
        self._settings: dict[str, tuple[Node, ForwardNodeSettings]] = {}
        for node in self.spec.nodes:
            self._node_settings(node)  # validate every node now (ConfigErrors)
        self.upstream = Upstream(
            self.spec,
            self._connect,
            net=self.net,
            probe=heartbeat_probe,
            clock=ctx.clock,
            owner=ctx.name,
        )
        self.split_key = record_split_key(self.spec.settings)
        self._failures = FailureLog(self.log, ctx.name, named_by_logger=True)

    def __repr__(self) -> str:
        return f"<ForwardOutput {self.ctx.name} {self.upstream!r}>"

    def loss_risks(self) -> list[str]:
        """``require_ack_response off`` on the output or a node: a chunk written to
        the socket counts as delivered, even if the receiver never took it."""
        off = [node.name for node in self.spec.nodes if not self._node_settings(node).require_ack]
        if not off:
            return []
        where = "" if ctx_single(self.spec) else f" (nodes {', '.join(off)})"
        return [
            f"require_ack_response off{where}: a chunk counts as delivered once written"
            " to the connection, so records a receiver loses before taking them are lost"
        ]

    def _node_settings(self, node: Node) -> ForwardNodeSettings:
        cached = self._settings.get(node.name)
        if cached is not None and cached[0] is node:
            return cached[1]
        settings = node_settings(self.ctx.options, node)
        client_context(settings.tls, self.ctx.config_dir)  # fail early on bad files
        self._settings[node.name] = (node, settings)
        return settings

    async def _connect(self, node: Node, host: str, port: int) -> ForwardClient:
        try:
            s = self._node_settings(node)
            ssl = client_context(s.tls, self.ctx.config_dir)
        except ConfigError as exc:
            raise DeliveryError("tls", f"{node.name}: {exc}") from None
        return await connect_node(node, host, port, s, ssl, self.net)

    def _sender(
        self, tag: str, data: bytes, records: int
    ) -> Callable[[Node, Connection], Awaitable[None]]:
        async def send(node: Node, connection: Connection) -> None:
            settings = self._node_settings(node)
            if self.io_timeout <= 0:
                await send_to_node(settings, connection, tag, data, records)
                return
            try:
                async with asyncio.timeout(self.io_timeout):
                    await send_to_node(settings, connection, tag, data, records)
            except TimeoutError:
                raise DeliveryError(
                    "timeout", f"{node.name}: no answer within net.io_timeout {self.io_timeout:g}s"
                ) from None

        return send

    def reload_upstream(self) -> None:
        """SIGHUP: re-read the upstream file; new nodes take traffic, removed ones drain.

        The new file is validated first: on ConfigErrors the running nodes stay.
        """
        spec = reread_upstream(self.ctx, self.spec.path, self._node_settings)
        if spec is None:
            return
        self.upstream.reload(spec)
        self.spec = spec
        self.split_key = record_split_key(spec.settings)

    async def start(self) -> None:
        await self.upstream.start()

    async def stop(self) -> None:
        await self.upstream.stop()

    async def flush(self, chunk: Chunk) -> FlushResult:
        """Deliver ``chunk``; OK only when a node confirmed every part of it."""
        try:
            for key, data, records in split_chunk(chunk, self.split_key):
                await self.upstream.deliver(
                    self._sender(chunk.tag, data, records), key=key, records=records, size=len(data)
                )
        except PermanentDeliveryError as exc:
            self.log.error("chunk %s rejected for good: %s", chunk.id, exc)
            return FlushResult.ERROR
        except NoHealthyNode as exc:
            self._failures.failed(f"chunk {chunk.id}", exc)
            return FlushResult.RETRY
        self._failures.delivered()
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        return self.upstream.status()
