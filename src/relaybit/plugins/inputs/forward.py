"""The ``forward`` input (Fluent Bit's in_forward): a Forward protocol server.

Accepts Fluentd, Fluent Bit, fluent-logger and relaybit clients over TCP, TLS
or a unix socket, with the optional secure handshake (``shared_key``,
``security.users``).  Records are acked only after ``ctx.emit`` returned (they
are stored).  Fluentd's UDP heartbeat is answered on the same port.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.net.forward_server import ForwardServer
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.stream_clients import (
    SERVER_TLS_OPTIONS,
    connection_limit_options,
    tls_server,
)

FORWARD_INPUT_OPTIONS = (
    ConfigMap(
        (
            Option("listen", "str", "0.0.0.0", "Address to listen on"),
            Option(
                "port", "int", 24224, "TCP port (also UDP heartbeats)", minimum=0, maximum=65535
            ),
            Option("unix_path", "str", None, "Listen on this unix socket instead of TCP"),
            Option("unix_perm", "str", None, "Permissions of the unix socket (octal, e.g. 0644)"),
            Option("tag_prefix", "str", None, "Prefix added to the tag of incoming records"),
            Option("tag", "str", None, "Replace the tag of incoming records"),
            Option(
                "buffer_chunk_size",
                "size",
                1024 * 1024,
                "Most bytes read from a connection at once (nothing is allocated for an idle"
                " connection)",
            ),
            Option(
                "buffer_max_size",
                "size",
                6 * 1024 * 1024,
                "Largest frame accepted; a frame that declares or reaches more closes its"
                " connection",
            ),
        )
    )
    + connection_limit_options("frame")
    + ConfigMap(
        (
            Option(
                "net.accept_timeout",
                "time",
                10.0,
                "Time a TLS handshake may take, and the client's PING after HELO (shared_key)",
                minimum=0.001,
            ),
            Option(
                "net.backlog",
                "int",
                4096,
                "Backlog of the listening socket (capped by the kernel's somaxconn); relaybit:"
                " 4096, so thousands of clients reconnecting at once are not delayed"
                " (Fluent Bit: 128)",
                minimum=1,
            ),
            Option(
                "shared_key", "str", None, "Require the secure handshake with this key", secret=True
            ),
            Option("self_hostname", "str", "localhost", "Host name sent in HELO/PONG"),
            Option(
                "security.users",
                "str",
                None,
                "A 'username password' pair allowed to connect",
                multiple=True,
                secret=True,
            ),
            Option(
                "workers",
                "int",
                1,
                "Fluent Bit's worker threads",
                no_effect="connections are served on the event loop",
            ),
            Option(
                "empty_shared_key",
                "bool",
                False,
                "Require the secure handshake with an empty shared key",
            ),
        )
    )
    + SERVER_TLS_OPTIONS
)


def parse_users(entries: list[str]) -> dict[str, str]:
    """``["alice s3cr3t", ...]`` -> ``{"alice": "s3cr3t"}``; ConfigError when malformed."""
    users: dict[str, str] = {}
    for raw in entries:
        parts = raw.split()
        if len(parts) != 2:
            raise ConfigError("expected 'username password' (two words)", key="security.users")
        users[parts[0]] = parts[1]
    return users


class ForwardInput(InputPlugin):
    """Receive records over the Forward protocol."""

    options: ClassVar[ConfigMap] = FORWARD_INPUT_OPTIONS
    description: ClassVar[str] = "Forward protocol server (Fluentd, Fluent Bit, fluent-logger)"

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.tag_prefix = opts.str("tag_prefix")
        self.tag_override = opts.opt_str("tag") if opts.is_set("tag") else None
        users = parse_users(opts.list("security.users"))
        shared_key = opts.opt_str("shared_key")
        if shared_key is None and opts.bool("empty_shared_key"):
            shared_key = ""
        if users and shared_key is None:
            raise ConfigError("security.users needs shared_key", key="security.users")
        perm = opts.opt_str("unix_perm")
        try:
            unix_perm = int(perm, 8) if perm else None
        except ValueError:
            raise ConfigError(
                f"expected an octal mode such as 0644, got {perm!r}", key="unix_perm"
            ) from None
        log = ctx.logger if ctx.logger is not None else logging.getLogger("relaybit")
        self.server = ForwardServer(
            self._on_entries,
            host=opts.str("listen"),
            port=opts.int("port"),
            unix_path=opts.opt_str("unix_path"),
            unix_perm=unix_perm,
            ssl=tls_server(ctx),
            shared_key=shared_key,
            self_hostname=opts.str("self_hostname"),
            users=users,
            buffer_chunk_size=opts.int("buffer_chunk_size"),
            buffer_max_size=opts.int("buffer_max_size"),
            handshake_timeout=opts.float("net.accept_timeout"),
            io_timeout=opts.float("net.io_timeout"),
            frame_timeout=opts.float("frame_timeout"),
            max_connections=opts.int("max_connections"),
            backlog=opts.int("net.backlog"),
            logger=log,
            name=ctx.name,
        )

    @property
    def port(self) -> int:
        """The bound TCP port (after ``start``)."""
        return self.server.port

    async def _on_entries(self, tag: str, entries: bytes, records: int) -> None:
        if self.tag_override:
            tag = self.tag_override
        elif self.tag_prefix:
            tag = self.tag_prefix + tag
        await self.ctx.emit(tag, entries, records)

    async def start(self) -> None:
        await self.server.start()
        unix = self.server.unix_path
        where = f"unix://{unix}" if unix else f"{self.server.host}:{self.server.port}"
        tls = " (TLS)" if self.server.ssl is not None else ""
        self.ctx.logger.info("listening on %s%s", where, tls)

    async def stop(self) -> None:
        await self.server.stop()

    def status(self) -> dict[str, Any]:
        return self.server.status()

    def metrics(self) -> dict[str, Any]:
        return self.server.metrics()

    def __repr__(self) -> str:
        return f"<ForwardInput {self.ctx.name} {self.server!r}>"
